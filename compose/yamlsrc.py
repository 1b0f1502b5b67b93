"""Reading one compose file: YAML to plain dicts and lists, keeping the line of every key.

The tree is built from PyYAML's node graph by hand so that we can
- remember where each key (and each sequence item) was written, for error messages;
- honour compose's ``!reset`` and ``!override`` tags (recorded as paths, applied when merging);
- resolve scalars as compose does (Go's yaml.v3, YAML 1.2 style): ``yes``, ``no``, ``on`` and
  ``off`` stay strings (``restart: no`` is the string "no"), ``22:22`` is a string and not the
  sexagesimal number 1342, dates stay strings;
- refuse duplicate keys, as compose does, while still allowing ``<<: *anchor`` merge keys.

A path is a tuple of mapping keys (str) and sequence indexes (int), e.g.
``("services", "web", "ports", 0)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from compose.errors import YAMLSyntaxError

Path = tuple


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans, no sexagesimal numbers, no timestamps."""


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o[0-7_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
               r"|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


def _construct_int(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if text.startswith("0b"):
        return sign * int(text[2:], 2)
    if text.startswith("0x"):
        return sign * int(text[2:], 16)
    if text.startswith("0o"):
        return sign * int(text[2:], 8)
    if len(text) > 1 and text.startswith("0"):
        return sign * int(text, 8)  # 0440: an octal file mode, as in docker-compose files
    return sign * int(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)

RESET_TAG = "!reset"
OVERRIDE_TAG = "!override"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class SourceFile:
    """One compose file as read from disk (or stdin)."""

    name: str                     # as shown in messages: the path as given, or "<stdin>"
    path: str | None              # absolute path; None for stdin
    dir: str                      # directory relative paths inside the file resolve against
    data: dict
    lines: dict = field(default_factory=dict)        # path -> 1-based line
    resets: set = field(default_factory=set)         # paths tagged !reset (removed from data)
    overrides: set = field(default_factory=set)      # paths tagged !override

    def line_of(self, path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return None


class _Builder:
    def __init__(self, loader: _Loader, name: str):
        self.loader = loader
        self.name = name
        self.lines: dict = {}
        self.resets: set = set()
        self.overrides: set = set()

    def error(self, message: str, node) -> YAMLSyntaxError:
        return YAMLSyntaxError(message, self.name, node.start_mark.line + 1)

    def key(self, node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error("mapping keys must be strings", node)
        return node.value

    def build(self, node, path: Path):
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for item in node.value:
                ipath = path + (len(items),)
                if item.tag == RESET_TAG:
                    continue
                self.lines[ipath] = item.start_mark.line + 1
                if item.tag == OVERRIDE_TAG:
                    self.overrides.add(ipath)
                items.append(self.build(item, ipath))
            return items
        return self.scalar(node)

    def scalar(self, node):
        if node.tag in (RESET_TAG, OVERRIDE_TAG):
            tag = (self.loader.resolve(yaml.ScalarNode, node.value, (True, False))
                   if node.style is None else "tag:yaml.org,2002:str")
            node = yaml.ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as e:
            raise self.error(e.problem or str(e), node) from None
        except ValueError as e:
            raise self.error(f"invalid value {node.value!r}: {e}", node) from None

    def mapping(self, node, path: Path) -> dict:
        merged: dict = {}
        explicit: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                # earlier mappings in a merge list take precedence
                for src in reversed(sources):
                    if not isinstance(src, yaml.MappingNode):
                        raise self.error("a merge key (<<) needs a mapping or a list of mappings", src)
                    merged.update(self.mapping(src, path))
                continue
            key = self.key(key_node)
            if key in explicit:
                raise self.error(f"mapping key {key!r} already defined at line "
                                 f"{self.lines.get(path + (key,), '?')}", key_node)
            kpath = path + (key,)
            if value_node.tag == RESET_TAG:
                self.resets.add(kpath)
                explicit[key] = _RESET
                self.lines[kpath] = key_node.start_mark.line + 1
                continue
            self.lines[kpath] = key_node.start_mark.line + 1
            if value_node.tag == OVERRIDE_TAG:
                self.overrides.add(kpath)
            explicit[key] = self.build(value_node, kpath)
        merged.update(explicit)
        return {k: v for k, v in merged.items() if v is not _RESET}


_RESET = object()


def parse(text: str, name: str, path: str | None, directory: str) -> SourceFile:
    """Parse compose YAML text into a SourceFile; errors name the file and line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            problem = e.problem or "invalid YAML"
            if e.context:
                problem = f"{problem} ({e.context})"
            raise YAMLSyntaxError(f"yaml: {problem}", name, mark.line + 1 if mark else None) from None
        except yaml.YAMLError as e:
            raise YAMLSyntaxError(f"yaml: {e}", name) from None
        if node is None:
            data: dict = {}
            b = _Builder(loader, name)
        else:
            if not isinstance(node, yaml.MappingNode):
                raise YAMLSyntaxError("top-level object must be a mapping", name, node.start_mark.line + 1)
            b = _Builder(loader, name)
            data = b.mapping(node, ())
    finally:
        loader.dispose()
    return SourceFile(name=name, path=path, dir=directory, data=data, lines=b.lines,
                      resets=b.resets, overrides=b.overrides)
