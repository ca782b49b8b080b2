"""A real single-node Slurm cluster in a temporary folder, for the Slurm tests and benchmark.

Debian's `slurm-wlm` and `munge` packages, run as root: a munged on its own socket and a
slurmctld and slurmd on free ports, all with their files (slurm.conf, state, spool, logs)
under one folder, so two clusters (two test sessions) on one machine never meet. Clients find
it through `SLURM_CONF` (`Cluster.env`). Each daemon runs in the foreground as our child and
is stopped by its pid. `start` raises `Unavailable` with one line saying why when it cannot
start (not root, a package missing, a daemon that does not come up).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = {"munged": "munge", "slurmctld": "slurm-wlm", "slurmd": "slurm-wlm"}
"""Each daemon, and the Debian package that holds it."""
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel")
UP_WITHIN_S = 60.0
CRED_EXPIRE_S = 10
"""AuthInfo's cred_expire (Slurm's default: 120 s). Slurm holds a requeued task for
cred_expire + 1 s: slurmd refuses a job whose credential is no newer (in whole seconds) than
the one it revoked at the requeue ("Job credential revoked", the task ends FAILED), so a task
must not start again in the second it was requeued. 10 s keeps the requeue tests short."""


class Unavailable(RuntimeError):
    """This machine cannot run the cluster; the message says why in one line."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


class Cluster:
    """Start with `Cluster(folder).start()`; `stop()` ends its daemons, by pid."""

    def __init__(self, folder: Path, partition: str = "debug") -> None:
        self.folder = Path(folder)
        self.partition = partition
        self.conf = self.folder / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> Cluster:
        if os.geteuid() != 0:
            raise Unavailable("the Slurm tests start slurmctld/slurmd and need root")
        missing = sorted({pkg for d, pkg in DAEMONS.items() if _which(d) is None}
                         | {"slurm-client" for c in CLIENTS if _which(c) is None})  # fmt: skip
        if missing:
            raise Unavailable(f"install {' '.join(missing)} (apt-get install -y slurm-wlm munge)")
        for sub in ("state", "spool", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._write_conf()
        try:
            self._spawn([_which("munged"), "--foreground", "--force", f"--socket={self.sock}",
                         f"--pid-file={self.folder / 'munged.pid'}",
                         f"--seed-file={self.folder / 'munged.seed'}",
                         f"--log-file={self.folder / 'log/munged.log'}"])  # fmt: skip
            self._wait(lambda: self.sock.exists(), "munged")
            self._spawn([_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._spawn([_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
            self._wait(self._node_idle, "the node to be idle")
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def sock(self) -> Path:
        return self.folder / "munge.socket"

    @property
    def node(self) -> str:
        return socket.gethostname().split(".")[0]

    def _write_conf(self) -> None:
        f, cpus = self.folder, os.cpu_count() or 1
        lines = [
            "ClusterName=ecstest",
            f"SlurmctldHost={self.node}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={self.sock},cred_expire={CRED_EXPIRE_S}",
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}",
            f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'log/slurmctld.log'}",
            f"SlurmdLogFile={f / 'log/slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "MpiDefault=none",
            "JobCompType=jobcomp/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerParameters=sched_interval=1",
            "KillWait=10",
            "MinJobAge=600",
            f"NodeName={self.node} CPUs={cpus} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of slurmctld's and slurmd's logs, for a test that failed."""
        out = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.folder / "log" / name
            text = path.read_text(errors="replace") if path.is_file() else "(no file)\n"
            out.append(f"--- {path}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    def _spawn(self, argv: list) -> None:
        log = open(self.folder / "log" / f"{Path(argv[0]).name}.out", "ab")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )
        log.close()

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, text=True,
                             capture_output=True, timeout=10)  # fmt: skip
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + UP_WITHIN_S
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise Unavailable(f"{Path(dead[0].args[0]).name} exited; see {self.folder}/log")
            try:
                if ready():
                    return
            except (OSError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.2)
        raise Unavailable(f"waited {UP_WITHIN_S:.0f} s for {what}; see {self.folder}/log")

    def stop(self) -> None:
        """Cancel what is left, then end slurmd, slurmctld and munged (in that order), by pid."""
        if any(p.poll() is None for p in self.procs[1:]):
            subprocess.run(["scancel", "--full", f"--partition={self.partition}"],
                           env=self.env, capture_output=True, timeout=30)  # fmt: skip
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
