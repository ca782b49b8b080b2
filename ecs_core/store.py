"""The run directory: the files a run writes, written atomically (a JSON file, tensors and a
checkpoint are whole or absent).

runs/<time>-<model>-<dataset>-<method_tag>-d<density>-s<seed>/   (`run_name`)
    config.json  events.jsonl  summary.json  masks.safetensors  model.safetensors
    quantized.safetensors (shared weights)  model.ecsz (compressed model)  .lock
    checkpoints/last.pt  checkpoints/best.pt  checkpoints/rewind.pt (IMP)

Other files are read and written where they are made: datasets in `data/`, the lock in
`runlock.py`, the .ecsz codec and ONNX files in `quant/`, TensorBoard logs in `tboard.py`;
`runfiles.py` reads a run's files without torch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ecs_core import runlock, safeio
from ecs_core.config import ConfigError, RunConfig
from ecs_core.events import Event
from ecs_core.runfiles import read_events


class StoreError(OSError):
    """A run directory cannot be created, written or read; the message names the path."""


class RunInUse(StoreError):
    """Another process is running in this run directory now (it holds the directory's lock)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        if pid == os.getpid():
            super().__init__(
                f"{path} is already open in this process (a run of it has not ended yet: "
                "finish or close it first)"
            )
        else:
            who = f"another process (pid {pid})" if pid else "another process"
            stop = f"`kill {pid}`" if pid else "Ctrl-C in its terminal"
            super().__init__(
                f"{path} is in use by {who}; wait for it to finish, or stop it ({stop}: it "
                "saves a checkpoint) and run this again"
            )
        self.path, self.pid = path, pid


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if os.environ.get("ECS_FAULT_KILL_WRITING") == path.name:
                _die_mid_write(f, data)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _die_mid_write(f: Any, data: bytes) -> None:
    """Fault injection for the reliability tests: SIGKILL ourselves halfway through a write."""
    import signal

    f.write(data[: len(data) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return safeio.read_json(path)
    except FileNotFoundError as exc:
        raise StoreError(f"{path} does not exist") from exc
    except safeio.FileRefused as exc:
        raise StoreError(str(exc)) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise StoreError(
            f"{path} is not valid JSON ({why}); it is damaged: restore it or delete the run"
        ) from exc


def run_name(config: RunConfig, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when or time.time()))
    return (
        f"{stamp}-{config.model_tag}-{config.dataset}-{config.method_tag}"
        f"-d{config.density:g}-s{config.seed}"
    )


class RunStore:
    """One run directory: `RunStore.create` makes a new one, `RunStore(path)` opens one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._events = None
        self._lock: int | None = None

    # --- one process at a time
    def lock(self) -> None:
        """Take the directory's lock (`flock` on `.lock`) until `close`, or raise `RunInUse`.

        Two processes writing one run directory (two sweeps over the same grid, a `--resume`
        of a run still going) would interleave checkpoints and events; the second one is
        refused instead. The kernel drops the lock when its process dies (kill -9 included),
        so a lock never outlives its run.
        """
        if self._lock is None:
            try:
                self._lock = runlock.acquire(self.path)
            except runlock.LockHeld as exc:
                raise RunInUse(self.path, exc.pid) from None
            except OSError as exc:
                raise StoreError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc

    @classmethod
    def create(cls, runs_dir: str | Path, config: RunConfig) -> RunStore:
        """Make a fresh, uniquely named run directory (never shared by two processes)."""
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create runs dir {runs_dir}: {exc.strerror or exc}; "
                "pass a writable --runs-dir"
            ) from exc
        if not os.access(runs_dir, os.W_OK | os.X_OK):
            raise StoreError(f"runs dir {runs_dir} is not writable; pass a writable --runs-dir")
        base = run_name(config)
        for i in range(1000):
            path = runs_dir / (base if i == 0 else f"{base}-{i + 1}")
            try:
                path.mkdir()  # atomic: exactly one process wins a name
            except FileExistsError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from exc
            store = cls(path)
            store.write_config(config)
            return store
        raise StoreError(f"could not find a free run directory name under {runs_dir}")

    # --- config, summary
    def write_config(self, config: RunConfig) -> None:
        atomic_write_json(self.path / "config.json", config.to_dict())

    def read_config(self) -> RunConfig:
        data = read_json(self.path / "config.json")
        try:
            return RunConfig.from_dict(data)
        except ConfigError as exc:
            raise StoreError(f"{self.path / 'config.json'}: {exc}") from exc

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    def write_channels(self, plan: dict[str, list[int]]) -> None:
        """channels.json: kept channel indices per group (`--structure channel`)."""
        atomic_write_json(self.path / "channels.json", plan)

    def read_channels(self) -> dict[str, list[int]] | None:
        """The channel plan, or None (a run that prunes weights, or none yet)."""
        path = self.path / "channels.json"
        if not path.is_file():
            return None
        data = read_json(path)
        ok = isinstance(data, dict) and all(
            isinstance(v, list) and all(type(i) is int for i in v) for v in data.values()
        )
        if not ok:
            raise StoreError(f"{path} is not a JSON object of channel index lists; it is damaged")
        return data

    def read_summary(self) -> dict[str, Any]:
        data = read_json(self.path / "summary.json")
        if not isinstance(data, dict):
            raise StoreError(f"{self.path / 'summary.json'} is not a JSON object; it is damaged")
        return data

    # --- events
    def append_event(self, event: Event) -> None:
        """Append one JSON line and flush, so a watcher sees it at once."""
        try:
            if self._events is None:
                self._events = open(self.path / "events.jsonl", "a", encoding="utf-8")
            self._events.write(json.dumps(event.to_dict()) + "\n")
            self._events.flush()
        except OSError as exc:
            raise StoreError(f"cannot append to {self.path / 'events.jsonl'}: {exc}") from exc

    def close(self) -> None:
        """Close the events file and release the lock (the `.lock` file stays, unlocked)."""
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._lock is not None:
            runlock.release(self._lock)
            self._lock = None

    def read_events(self) -> Iterator[Event]:
        """Events written so far; a half-written last line (a run still writing) is skipped."""
        yield from read_events(self.path)[0]

    # --- tensors (safetensors: loading never runs code)
    def save_tensors(self, name: str, tensors: dict[str, torch.Tensor]) -> Path:
        from safetensors.torch import save

        data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        path = self.path / name
        atomic_write_bytes(path, save(data))
        return path

    def load_tensors(self, name: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load

        path = self.path / name
        try:
            return load(safeio.read_bytes(path))
        except FileNotFoundError as exc:
            raise StoreError(f"{path} does not exist") from exc
        except safeio.FileRefused as exc:
            raise StoreError(str(exc)) from exc
        except Exception as exc:  # safetensors raises its own error types on bad headers
            raise StoreError(f"{path} is not a valid safetensors file ({exc})") from exc

    # --- checkpoints (torch.save, loaded with weights_only=True: never runs code)
    def save_checkpoint(self, state: dict[str, Any], name: str = "last.pt") -> Path:
        import io

        folder = self.path / "checkpoints"
        folder.mkdir(exist_ok=True)
        buf = io.BytesIO()
        torch.save(state, buf)
        path = folder / name
        atomic_write_bytes(path, buf.getvalue())
        return path

    def load_checkpoint(self, name: str = "last.pt") -> dict[str, Any] | None:
        path = self.path / "checkpoints" / name
        if not path.exists():
            return None
        import warnings

        try:
            with warnings.catch_warnings(), safeio.open_regular(path) as f:
                warnings.simplefilter("ignore")  # torch warns about odd pickles: the error says it
                return torch.load(f, map_location="cpu", weights_only=True)
        except safeio.FileRefused as exc:
            raise StoreError(str(exc)) from exc
        except Exception as exc:
            raise StoreError(
                f"{path} is not a readable checkpoint ({type(exc).__name__}); it may be "
                "truncated or from elsewhere. Delete it to start the run over."
            ) from exc
