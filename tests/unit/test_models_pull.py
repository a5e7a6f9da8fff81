"""`stackgen models pull` against an Ollama-API-compatible server on 127.0.0.1 that streams
/api/pull the way Ollama documents it (docs/api.md, "Pull a Model"), and a GGUF file server."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from httpfakes import free_port, js, no_proxy, run_measured, serve  # noqa: F401 (fixture)
from stackgen.cli import cli
from stackgen.commands.models import Progress

LAYER = "sha256:2bada8a7450677000f678be90653b85d364de7db25eb5ea54136ada5f3933730"
CONFIG = "sha256:a70ff7e570d97baaf4e62ac6e6ad9975e04caa6d900d3742d37698494479e0cd"
GGUF = bytes(range(256)) * 12_288  # 3 MiB of a known pattern
GGUF_SHA = hashlib.sha256(GGUF).hexdigest()


@pytest.fixture(autouse=True)
def _direct(no_proxy):
    """The loopback servers are reached directly, whatever proxy this machine sets."""


def progress(total: int, digest: str, steps: int = 4):
    yield {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total}
    for i in range(1, steps + 1):
        yield {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": total * i // steps}


def pull(h):
    """POST /api/pull: the stream Ollama sends, or its errors."""
    model = h.json_body()["model"]
    if model == "boom:1b":
        return h.reply_json(500, {"error": "pull model manifest: 500 Internal Server Error"})
    events = [{"status": "pulling manifest"}]
    events += list(progress(2_019_377_376, LAYER))
    if model == "corrupt:7b":
        events.append({"status": "verifying sha256 digest"})
        events.append({"error": f"digest mismatch, file must be downloaded again: want {LAYER}, got sha256:0000"})
        return h.stream_lines(events)
    events += list(progress(485, CONFIG, steps=1))
    events += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
    h.stream_lines(events)


@pytest.fixture
def ollama():
    with serve({"GET /api/tags": js(200, {"models": [{"name": "llama3.2:1b", "model": "llama3.2:1b"}]}), "POST /api/pull": pull}) as server:
        yield server


@pytest.fixture
def files():
    with serve(
        {
            "GET /qwen.gguf": lambda h: h.reply(200, GGUF, "application/octet-stream"),
            "GET /moved.gguf": lambda h: (h.send_response(302), h.send_header("Location", "/qwen.gguf"), h.send_header("Content-Length", "0"), h.end_headers()),
        }
    ) as server:
        yield server


def spec(tmp_path, *, ollama_port=None, models=(), model=None, url=None, sha=None):
    lines = ["version: 1", "name: pull-test", "services:"]
    if ollama_port:
        lines += [f"  ollama: {{port: {ollama_port}, models: {json.dumps(list(models))}}}"]
    if model:
        lines += ["  llama-cpp:", f"    model: {model}"]
        lines += [f"    model_url: {url}"] if url else []
        lines += [f"    model_sha256: {sha}"] if sha else []
    path = tmp_path / "stack.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, ["models", "pull", *args])


def test_pull_streams_progress_and_skips_present(tmp_path, ollama):
    result = run(spec(tmp_path, ollama_port=ollama.port, models=["llama3.2:1b", "qwen2.5:7b"]))
    assert result.exit_code == 0, result.output
    assert result.output == (
        "llama3.2:1b: already present\n"
        "qwen2.5:7b: pulling manifest\n"
        "qwen2.5:7b: pulling 2bada8a74506 (1.88 GiB)\n"
        "qwen2.5:7b: pulling a70ff7e570d9 (485 B)\n"
        "qwen2.5:7b: verifying sha256 digest\n"
        "qwen2.5:7b: writing manifest\n"
        "qwen2.5:7b: pulled (1.88 GiB)\n"
        "1 pulled, 1 already present, 0 failed\n"
    )
    pulls = [json.loads(body) for method, path, body in ollama.requests if path == "/api/pull"]
    assert pulls == [{"model": "qwen2.5:7b", "stream": True}]  # the present model is not pulled again


def test_digest_mismatch_and_server_error(tmp_path, ollama):
    result = run(spec(tmp_path, ollama_port=ollama.port, models=["corrupt:7b", "boom:1b", "qwen2.5:7b"]))
    assert result.exit_code == 1
    assert f"corrupt:7b: FAILED: digest mismatch, file must be downloaded again: want {LAYER}, got sha256:0000\n" in result.stderr
    assert "boom:1b: FAILED: HTTP 500: pull model manifest: 500 Internal Server Error\n" in result.stderr
    assert result.stdout.endswith("1 pulled, 0 already present, 2 failed\n")  # one failure does not stop the others


def test_stream_that_stops_early(tmp_path):
    with serve({"GET /api/tags": js(200, {"models": []}), "POST /api/pull": lambda h: h.stream_lines([{"status": "pulling manifest"}])}) as server:
        result = run(spec(tmp_path, ollama_port=server.port, models=["llama3.2:3b"]))
    assert result.exit_code == 1
    assert "llama3.2:3b: FAILED: the stream ended before Ollama reported success" in result.stderr


def test_ollama_not_running(tmp_path):
    port = free_port()
    result = run(spec(tmp_path, ollama_port=port, models=["llama3.2:3b", "qwen2.5:7b"]))
    assert result.exit_code == 1
    assert f"ollama at http://127.0.0.1:{port} is not usable: connection refused" in result.stderr
    assert result.stdout == "0 pulled, 0 already present, 2 failed\n"


def test_gguf_download_verified_and_renamed(tmp_path, files):
    target = tmp_path / "models" / "qwen.gguf"
    result = run(spec(tmp_path, model=target, url=files.url + "/moved.gguf", sha=GGUF_SHA))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == GGUF
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["qwen.gguf"], "no .part file is left behind"
    assert result.output.startswith(f"qwen.gguf: downloading {files.url}/moved.gguf (3.0 MiB)\nqwen.gguf: saved {target} (3.0 MiB, sha256 ok)\n")

    again = run(spec(tmp_path, model=target, url=files.url + "/qwen.gguf", sha=GGUF_SHA))
    assert again.exit_code == 0 and f"qwen.gguf: already present at {target} (sha256 ok)" in again.output
    assert [r for r in files.requests if r[1] == "/qwen.gguf"].__len__() == 1, "a verified file is not downloaded again"


def test_gguf_checksum_mismatch_leaves_nothing(tmp_path, files):
    target = tmp_path / "models" / "qwen.gguf"
    wrong = "ab" * 32
    result = run(spec(tmp_path, model=target, url=files.url + "/qwen.gguf", sha=wrong))
    assert result.exit_code == 1
    assert f"qwen.gguf: FAILED: sha256 mismatch: the download is {GGUF_SHA}, the spec says {wrong}" in result.stderr
    assert list(target.parent.iterdir()) == []


def test_gguf_without_checksum_prints_one_to_pin(tmp_path, files):
    target = tmp_path / "qwen.gguf"
    result = run(spec(tmp_path, model=target, url=files.url + "/qwen.gguf"))
    assert result.exit_code == 0, result.output
    assert f"pin it: add 'model_sha256: {GGUF_SHA}' to services.llama-cpp" in result.output


def test_gguf_existing_file_with_another_checksum(tmp_path, files):
    target = tmp_path / "qwen.gguf"
    target.write_bytes(b"something else")
    result = run(spec(tmp_path, model=target, url=files.url + "/qwen.gguf", sha=GGUF_SHA))
    assert result.exit_code == 1
    assert "exists but its sha256 is" in result.stderr and "remove it to download again" in result.stderr
    assert target.read_bytes() == b"something else"


SLACK_S = 4  # interpreter start-up on a busy 2-core CI machine


@pytest.mark.parametrize("sha", [GGUF_SHA, None], ids=["sha256", "no-sha256"])
@pytest.mark.parametrize("kind", ["fifo", "device", "link-to-device", "directory"])
def test_a_model_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind, sha):
    """A FIFO at the model path blocked the open (waiting for a writer) and /dev/zero was hashed
    forever, past --timeout: neither is a model file."""
    import os
    from pathlib import Path

    target = tmp_path / "models" / "m.gguf"
    target.parent.mkdir()
    what = {"fifo": "a FIFO", "directory": "a directory"}.get(kind, "a character device")
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target = Path("/dev/zero")
    elif kind == "link-to-device":
        target.symlink_to("/dev/zero")
    else:
        target.mkdir()
    got = run_measured(["models", "pull", spec(tmp_path, model=target, url=f"http://127.0.0.1:{free_port()}/m.gguf", sha=sha), "--timeout", "2", "--idle-timeout", "1"], limit_s=20)
    assert got.returncode == 1, got
    assert f"{target.name}: FAILED: {target} is {what}, not a regular file; a model must be a file\n" in got.stderr
    assert got.seconds < 2 + SLACK_S
    assert "Traceback" not in got.stderr


def test_hashing_a_present_model_ends_at_the_timeout(tmp_path):
    """The present file's sha256 is computed under --timeout (in a thread that stops when the
    deadline passes): a 64 GiB file (sparse: it takes no disk) would take a minute to hash."""
    import os

    target = tmp_path / "big.gguf"
    with open(target, "wb") as fh:
        fh.truncate(64 << 30)
    assert os.stat(target).st_blocks < 64, "this filesystem does not keep the file sparse"
    got = run_measured(["models", "pull", spec(tmp_path, model=target, url=f"http://127.0.0.1:{free_port()}/m.gguf", sha=GGUF_SHA), "--timeout", "1"], limit_s=30)
    assert got.returncode == 1, got
    assert f"big.gguf: FAILED: checking the sha256 of {target}: gave up: the whole pull may take at most 1s (--timeout)\n" in got.stderr
    assert 1 <= got.seconds < 1 + SLACK_S


def test_gguf_404(tmp_path, files):
    target = tmp_path / "qwen.gguf"
    result = run(spec(tmp_path, model=target, url=files.url + "/nope.gguf"))
    assert result.exit_code == 1
    assert f"qwen.gguf: FAILED: GET {files.url}/nope.gguf: HTTP 404" in result.stderr
    assert list(tmp_path.glob("*.gguf*")) == []


def test_nothing_to_pull(tmp_path):
    (tmp_path / "stack.yaml").write_text("version: 1\nname: x\nservices:\n  redis: {}\n")
    result = run(str(tmp_path / "stack.yaml"))
    assert result.exit_code == 0 and "nothing to pull" in result.output


def test_progress_bar_on_a_terminal():
    out = io.StringIO()
    bar = Progress("qwen2.5:7b", tty=True, out=out)
    bar.update(0, 4 * 1024**3, "pulling")
    bar.update(4 * 1024**3, 4 * 1024**3, "pulling")
    bar.finish("pulled (4.00 GiB)")
    frames = out.getvalue().split("\r")
    assert frames[1] == "qwen2.5:7b [..............................]   0% 0 B of 4.00 GiB\x1b[K"
    assert frames[2] == "qwen2.5:7b [##############################] 100% 4.00 GiB of 4.00 GiB\x1b[K"
    assert frames[3] == "\x1b[Kqwen2.5:7b: pulled (4.00 GiB)\n"


# -- .part files of a killed pull (issue 10, item 17) ---------------------------------------------


def half_then_stall(h):
    """Announces the whole GGUF, sends its first MiB, then hangs: a download in progress."""
    h.send_response(200)
    h.send_header("Content-Length", str(len(GGUF)))
    h.end_headers()
    h.wfile.write(GGUF[: 1 << 20])
    h.wfile.flush()
    h.stall(60)


def start_pull(spec_path: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stackgen", "models", "pull", spec_path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_part(folder, proc: subprocess.Popen) -> list:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = [p for p in folder.glob(".qwen.gguf.*.part") if p.stat().st_size >= 1 << 20]
        if parts:
            return parts
        assert proc.poll() is None, "the pull ended before it wrote its .part file"
        time.sleep(0.02)
    raise AssertionError("no .part file appeared")


@pytest.fixture
def stalling(files):
    files.routes["GET /stall.gguf"] = half_then_stall
    return files


def test_a_killed_pulls_part_file_is_swept_by_the_next_pull(tmp_path, stalling):
    target = tmp_path / "models" / "qwen.gguf"
    killed = start_pull(spec(tmp_path, model=target, url=stalling.url + "/stall.gguf"))
    try:
        parts = wait_for_part(target.parent, killed)
    finally:
        killed.kill()
        killed.wait()
    assert all(p.exists() for p in parts), "SIGKILL leaves the .part file (nothing can remove it then)"

    result = run(spec(tmp_path, model=target, url=stalling.url + "/qwen.gguf", sha=GGUF_SHA))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.parent.iterdir()) == ["qwen.gguf"], "the stale .part file is swept"


def test_a_live_pulls_part_file_is_left_alone(tmp_path, stalling):
    target = tmp_path / "models" / "qwen.gguf"
    live = start_pull(spec(tmp_path, model=target, url=stalling.url + "/stall.gguf"))
    try:
        parts = wait_for_part(target.parent, live)
        result = run(spec(tmp_path, model=target, url=stalling.url + "/qwen.gguf", sha=GGUF_SHA))
        assert result.exit_code == 0, result.output
        assert target.read_bytes() == GGUF
        assert all(p.exists() for p in parts), "the concurrent pull's .part file (locked by it) is kept"
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()


def test_sweep_never_removes_a_part_another_process_holds(tmp_path):
    """The lock is the whole test: held in another process, the file stays; released, it goes."""
    from stackgen.commands.models import sweep_parts

    target = tmp_path / "m.gguf"
    part = tmp_path / ".m.gguf.abc123.part"
    part.write_bytes(b"partial")
    other = tmp_path / ".other.gguf.abc123.part"  # another model's: never touched
    other.write_bytes(b"partial")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'rb'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()", str(part)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        assert sweep_parts(target) == [] and part.exists()
    finally:
        holder.stdin.close()
        holder.wait()
    assert sweep_parts(target) == [part] and not part.exists()
    assert other.exists()
