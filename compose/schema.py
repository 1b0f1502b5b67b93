"""Validation of each compose file against the compose file schema (compose/compose-spec.json,
shipped as package data), and the list of keys nerdpy implements.

`validate(src)` reports jsonschema's best-matching error as one message naming the dotted path,
the file and the line of the offending key. Extension keys (``x-...``) are allowed wherever the
specification allows them. `unimplemented_keys(model_dict)` lists the keys that are valid compose
but that nerdpy ignores, for one warning.
"""
from __future__ import annotations

import functools
import json
import os
import re

from compose.errors import SchemaError
from compose.interpolate import dotted

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compose-spec.json")

# service keys nerdpy implements (issue 5); everything else valid is warned about once
IMPLEMENTED_SERVICE_KEYS = frozenset("""
image command entrypoint environment env_file labels container_name hostname domainname user
working_dir ports expose volumes tmpfs networks network_mode depends_on healthcheck restart deploy
scale stop_signal stop_grace_period init privileged cap_add cap_drop security_opt ulimits sysctls
extra_hosts dns dns_search read_only shm_size pid devices tty stdin_open logging secrets configs
pull_policy platform profiles mem_limit cpus pids_limit extends
dns_opt group_add oom_score_adj mac_address label_file mem_reservation memswap_limit cpu_shares links
post_start pre_stop build userns_mode
ipc uts cgroup cpuset cpu_quota cpu_period volumes_from runtime gpus
""".split())
IMPLEMENTED_SERVICE_KEYS |= {"develop"}  # compose watch (issue 16)
IMPLEMENTED_DEPLOY_KEYS = frozenset({"replicas", "resources", "restart_policy"})
IMPLEMENTED_RESOURCE_KEYS = frozenset({"limits", "reservations"})
IMPLEMENTED_RESERVATION_KEYS = frozenset({"memory", "devices"})
IMPLEMENTED_TOP_KEYS = frozenset({"version", "name", "include", "services", "networks", "volumes", "secrets",
                                  "configs"})

_TYPE_WORDS = {"string": "a string", "number": "a number", "integer": "an integer", "boolean": "a boolean",
               "object": "a mapping", "array": "a list", "null": "null"}


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    with open(SCHEMA_FILE, encoding="utf-8") as f:
        schema = json.load(f)
    return jsonschema.Draft7Validator(schema)


def _type_words(t) -> str:
    types = t if isinstance(t, list) else [t]
    words = list(dict.fromkeys(_TYPE_WORDS.get(x, x) for x in types))
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unexpected(error) -> list[str]:
    schema = error.schema
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    inst = error.instance if isinstance(error.instance, dict) else {}
    return [k for k in inst if k not in props and not any(re.search(p, k) for p in patterns)]


def _message(error, where: str) -> tuple[str, tuple]:
    """(message, path of the offending node) for one jsonschema error."""
    path = tuple(error.absolute_path)
    v = error.validator
    subject = where or "top-level"
    if v == "additionalProperties":
        extra = _unexpected(error)
        if extra:
            key = extra[0]
            if path == ("services",) or (len(path) == 1 and path[0] in ("networks", "volumes", "secrets", "configs")):
                return (f"{subject}: invalid name {key!r} (use only letters, digits, '.', '_' and '-')",
                        path + (key,))
            hint = ""
            if not path:
                hint = " (top-level keys are version, name, services, networks, volumes, secrets, configs, " \
                       "include and x-... extensions)"
            return f"{subject}: additional property {key!r} is not allowed{hint}", path + (key,)
    if v == "type":
        return f"{subject} must be {_type_words(error.validator_value)}, not {_describe(error.instance)}", path
    if v == "enum":
        allowed = ", ".join(str(x) for x in error.validator_value)
        return f"{subject} must be one of {allowed}, not {error.instance!r}", path
    if v == "required":
        m = re.match(r"'(.+)' is a required property", error.message)
        key = m.group(1) if m else error.message
        return f"{subject}: {key!r} is required", path
    if v == "uniqueItems":
        return f"{subject} contains duplicate items", path
    if v == "pattern":
        return f"{subject}: invalid value {error.instance!r}", path
    if v in ("minimum", "maximum"):
        return f"{subject}: {error.instance!r} is out of range", path
    if v in ("oneOf", "anyOf"):
        accepted: list[str] = []
        for sub in error.context or []:
            if sub.validator == "type" and not sub.relative_path:
                vv = sub.validator_value
                accepted.extend(vv if isinstance(vv, list) else [vv])
        if accepted:
            return f"{subject} must be {_type_words(accepted)}, not {_describe(error.instance)}", path
        return f"{subject} has an invalid form ({_describe(error.instance)} not accepted here)", path
    return f"{subject}: {error.message}", path


def _cache_path(data) -> str | None:
    """Where a marker for data already found valid lives: importing jsonschema costs about
    0.2 s, so files validated once (same content after interpolation, same schema) are not
    validated again. NERDPY_COMPOSE_CACHE sets the directory; empty disables the cache."""
    import hashlib

    base = os.environ.get("NERDPY_COMPOSE_CACHE")
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "nerdpy", "compose-valid")
    if not base:
        return None
    try:
        st = os.stat(SCHEMA_FILE)
        blob = json.dumps(data, sort_keys=True, default=repr).encode()
    except (OSError, TypeError, ValueError):
        return None
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}\n".encode() + blob).hexdigest()
    return os.path.join(base, h[:2], h[2:])


def validate(src) -> None:
    """Validate a SourceFile's (interpolated) data; raise SchemaError with file and line."""
    marker = _cache_path(src.data)
    if marker and os.path.exists(marker):
        return
    _validate(src)
    if marker:
        try:
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            with open(marker, "w"):
                pass
        except OSError:
            pass


def _validate(src) -> None:
    validator = _validator()
    errors = list(validator.iter_errors(src.data))
    if not errors:
        return
    from jsonschema.exceptions import best_match

    error = _deepest_same_type(best_match(errors))
    where = dotted(error.absolute_path)
    message, path = _message(error, where)
    raise SchemaError(message, src.name, src.line_of(path), path=dotted(path))


def _deepest_same_type(error):
    """Walk oneOf/anyOf contexts towards the branch matching the instance's type."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        inst = error.instance
        # branches whose schema type accepts the instance and failed for another reason
        matching = [s for s in error.context
                    if s.validator != "type" and _accepts_type(s.schema, inst)]
        if not matching:
            matching = [s for s in error.context if len(s.absolute_path) > len(error.absolute_path)]
        if not matching:
            return error
        from jsonschema.exceptions import best_match
        error = best_match(matching)
    return error


def _accepts_type(schema, inst) -> bool:
    t = schema.get("type") if isinstance(schema, dict) else None
    if t is None:
        return True
    types = t if isinstance(t, list) else [t]
    for ty in types:
        if ty == "object" and isinstance(inst, dict):
            return True
        if ty == "array" and isinstance(inst, list):
            return True
        if ty == "string" and isinstance(inst, str):
            return True
        if ty == "boolean" and isinstance(inst, bool):
            return True
        if ty in ("number", "integer") and isinstance(inst, (int, float)) and not isinstance(inst, bool):
            return True
        if ty == "null" and inst is None:
            return True
    return False


def unimplemented_keys(data: dict) -> list[str]:
    """Dotted paths of valid keys that nerdpy does not implement (x- keys excluded)."""
    out = []
    for key in data:
        if key not in IMPLEMENTED_TOP_KEYS and not key.startswith("x-"):
            out.append(key)
    for name, svc in (data.get("services") or {}).items():
        if not isinstance(svc, dict):
            continue
        for key in svc:
            if key.startswith("x-"):
                continue
            if key not in IMPLEMENTED_SERVICE_KEYS:
                out.append(f"services.{name}.{key}")
        deploy = svc.get("deploy")
        if isinstance(deploy, dict):
            for key in deploy:
                if not key.startswith("x-") and key not in IMPLEMENTED_DEPLOY_KEYS:
                    out.append(f"services.{name}.deploy.{key}")
            res = deploy.get("resources")
            if isinstance(res, dict):
                for key in res:
                    if not key.startswith("x-") and key not in IMPLEMENTED_RESOURCE_KEYS:
                        out.append(f"services.{name}.deploy.resources.{key}")
                resv = res.get("reservations")
                if isinstance(resv, dict):
                    for key in resv:
                        if not key.startswith("x-") and key not in IMPLEMENTED_RESERVATION_KEYS:
                            out.append(f"services.{name}.deploy.resources.reservations.{key}")
    return out
