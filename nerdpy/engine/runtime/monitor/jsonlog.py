"""docker's json-file log as the monitor writes it: one JSON record per line, rotated by size.

Standard library only (the monitor loads it by its bare name, as wire.py). Output is encoded a
chunk at a time, never a line at a time: the complete lines of one read become their records
with a few bytes operations (or, for text that needs escaping, one json.dumps of the chunk's
lines), and the records of one read are written with one write(2) (a few more across a
rotation). All the records of one read carry the time of that read.

A disk that fills up never stops the container: when a write fails for lack of space (ENOSPC,
EDQUOT) the half-written records are cut off again, the output keeps being drained and counted as
dropped, and writing resumes once the file system has room again (checked at most once a second,
with a margin, so that the log does not eat the space other writers just freed). The first
record written after a gap is a marker (or, when the container ends before there is room, the
count goes into its state.json as `log_dropped`), `{"log":"","stream":"stderr","attrs":{"nerdpy.dropped":
"N","nerdpy.dropped.since":"T"}}`, that `nerdpy logs` turns into a warning.
"""
import errno
import json
import os
import time

STDOUT, STDERR = 1, 2
LINE_MAX = 16384          # docker splits longer unterminated output at 16 KiB
RETRY_SECONDS = 1.0       # while dropping: how often to look for room again
FREE_MARGIN = 8 << 20     # resume only with this much free beyond what is written
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

# bytes a JSON string holds as they are: printable ASCII but for the quote and the backslash
_PLAIN_NL = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\') + b"\n"
_HEAD = b'{"log":"'


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


def _tail(stream, ts):
    return ('","stream":"%s","time":"%s"}\n' % ("stdout" if stream == STDOUT else "stderr", ts)).encode()


def encode_lines(stream, chunk, ts):
    """The records of `chunk`, a run of complete lines (it ends with a newline)."""
    tail = _tail(stream, ts)
    if not chunk.translate(None, _PLAIN_NL):
        # nothing to escape: each newline ends one record and starts the next
        return _HEAD + chunk[:-1].replace(b"\n", b"\\n" + tail + _HEAD) + b"\\n" + tail
    # escape every line at once: json's separator is a raw newline, which no escaped string holds
    lines = chunk.decode("utf-8", "replace").split("\n")
    lines.pop()
    joined = json.dumps(lines, ensure_ascii=False, separators=("\n", ":"))[2:-2]
    tail_s = tail.decode()
    return (_HEAD.decode() + joined.replace('"\n"', "\\n" + tail_s + _HEAD.decode()) + "\\n" + tail_s).encode()


def encode_one(stream, data, ts):
    """One record for output that does not end with a newline (a long line's piece, the last bytes)."""
    return (json.dumps({"log": data.decode("utf-8", "replace"), "stream": "stdout" if stream == STDOUT else "stderr",
                        "time": ts}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def dropped_marker(count, since, ts):
    return (json.dumps({"log": "", "stream": "stderr", "time": ts,
                        "attrs": {"nerdpy.dropped": str(count), "nerdpy.dropped.since": since}},
                       separators=(",", ":")) + "\n").encode()


class JsonLog:
    """docker's json-file driver: one JSON object per line, rotated by size."""

    def __init__(self, path, max_size=0, max_file=1, on_drop=None):
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.f = open(path, "ab", buffering=0) if path else None
        self.size = self.f.tell() if self.f else 0
        self.partial = {STDOUT: b"", STDERR: b""}
        self.dropped = 0            # records lost since the last gap began
        self.dropped_since = ""     # when that gap began
        self.retry_at = 0.0
        self.unwritten = 0          # dropped records whose marker could not be written either
        self.on_drop = on_drop      # called (count, since) when writing resumes after a gap

    def write(self, stream, data):
        if self.f is None:
            return
        buf = self.partial[stream] + data if self.partial[stream] else data
        cut = buf.rfind(b"\n") + 1
        ts = now_rfc3339()
        out = encode_lines(stream, buf[:cut], ts) if cut else b""
        rest = buf[cut:]
        while len(rest) >= LINE_MAX:
            out += encode_one(stream, rest[:LINE_MAX], ts)
            rest = rest[LINE_MAX:]
        self.partial[stream] = rest
        if out:
            self._append(out)

    def flush_partial(self):
        if self.f is None:
            return
        ts = now_rfc3339()
        for stream in (STDOUT, STDERR):
            if self.partial[stream]:
                self._append(encode_one(stream, self.partial[stream], ts))
                self.partial[stream] = b""

    def end_gap(self):
        """At the container's exit: the marker of a gap still open, written now if there is
        room; reported (on_drop) either way."""
        if not self.dropped or self.f is None:
            return
        if self._write(b""):  # writes the marker first
            return
        count, since = self.dropped, self.dropped_since
        self.dropped, self.dropped_since = 0, ""
        self.unwritten += count  # no marker for these: the monitor records them in the state
        if self.on_drop is not None:
            self.on_drop(count, since)

    def _append(self, data):
        """Write whole records, rotating between them; drop them while the disk is full."""
        if self.dropped and not self._room_again(len(data)):
            self.dropped += data.count(b"\n")
            return
        while data:
            if self.max_size and self.size + len(data) > self.max_size:
                cut = data.rfind(b"\n", 0, self.max_size - self.size) + 1
                if not cut:
                    if self.size:
                        if not self._rotate():
                            self._drop(data)
                            return
                        continue
                    cut = data.find(b"\n") + 1 or len(data)  # one record larger than a file
            else:
                cut = len(data)
            if not self._write(data[:cut]):
                self._drop(data)
                return
            data = data[cut:]

    def _write(self, data):
        """All of `data` or nothing: a failed write is cut off again (no half record stays)."""
        if self.dropped:
            marker = dropped_marker(self.dropped, self.dropped_since, now_rfc3339())
            if not self._write_raw(marker):
                return False
            count, since = self.dropped, self.dropped_since
            self.dropped, self.dropped_since = 0, ""
            if self.on_drop is not None:
                self.on_drop(count, since)
        return self._write_raw(data)

    def _write_raw(self, data):
        start = self.size
        view = memoryview(data)
        try:
            while view:
                n = self.f.write(view)
                view = view[n:]
                self.size += n
        except OSError as e:
            if e.errno not in NO_SPACE:
                raise
            try:
                os.ftruncate(self.f.fileno(), start)
            except OSError:
                pass
            self.size = start
            return False
        return True

    def _drop(self, data):
        if not self.dropped:
            self.dropped_since = now_rfc3339()
        self.dropped += data.count(b"\n")
        self.retry_at = time.monotonic() + RETRY_SECONDS

    def _room_again(self, need):
        now = time.monotonic()
        if now < self.retry_at:
            return False
        self.retry_at = now + RETRY_SECONDS
        try:
            st = os.fstatvfs(self.f.fileno())
        except OSError:
            return False
        return st.f_bavail * st.f_frsize >= need + FREE_MARGIN

    def _rotate(self):
        try:
            self.f.close()
            if self.max_file <= 1:
                os.truncate(self.path, 0)
            else:
                for i in range(self.max_file - 1, 0, -1):
                    src = self.path if i == 1 else "%s.%d" % (self.path, i - 1)
                    if os.path.exists(src):
                        os.rename(src, "%s.%d" % (self.path, i))
            self.f = open(self.path, "ab", buffering=0)
        except OSError as e:
            if e.errno not in NO_SPACE:
                raise
            if self.f.closed:
                self.f = open(self.path, "ab", buffering=0)
            self.size = self.f.tell()
            return False
        self.size = 0
        return True

    def sync(self):
        if self.f is not None:
            try:
                os.fsync(self.f.fileno())
            except OSError:
                pass
