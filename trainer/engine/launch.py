"""The torchrun relaunch that every multi-process command uses (`posmask pretrain --gpus/--nproc`,
`posmask eval --gpus`), on one machine or several (torchrun's static rendezvous). No torch import here,
so that the flags cost nothing at `posmask --help`."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


def under_torchrun() -> bool:
    """True inside a torchrun worker."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class Launch:
    """Where the processes of one job run: `nproc` on each of `nnodes` machines; the rendezvous is the
    machine of node 0 (`master_addr:master_port`). One node without a port: torchrun --standalone."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def multiprocess(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1

    def torchrun_flags(self) -> list[str]:
        port = self.master_port or (int(os.environ["MASTER_PORT"]) if os.environ.get("MASTER_PORT") else None)
        if self.nnodes == 1 and port is None:
            return ["--standalone", f"--nproc_per_node={self.nproc}"]
        return [f"--nnodes={self.nnodes}", f"--node_rank={self.node_rank}", f"--nproc_per_node={self.nproc}",
                f"--master_addr={self.master_addr or '127.0.0.1'}", f"--master_port={port or 29500}"]


def add_launch_options(parser: Any) -> None:
    """Several machines (torchrun's static rendezvous): the same command on every node, its NODE_RANK each."""
    g = parser.add_argument_group("several machines")
    g.add_argument("--nnodes", type=int, default=1, help="machines taking part (default 1)")
    g.add_argument("--node-rank", type=int, default=0, help="this machine's index, 0 .. nnodes-1 (0: the master)")
    g.add_argument("--master-addr", help="address of node 0 (default 127.0.0.1)")
    g.add_argument("--master-port", type=int, help="rendezvous port on node 0 (default: $MASTER_PORT or 29500)")


def launch_from_args(args: Any, nproc: int) -> Launch:
    """The Launch of a command's --nnodes/--node-rank/--master-* flags; a clear error for impossible ones."""
    from toolbox.errors import UserError

    if args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
        raise UserError(f"--node-rank {args.node_rank} must be in 0..{args.nnodes - 1} (--nnodes {args.nnodes})")
    if args.nnodes > 1 and not args.master_addr:
        raise UserError("--nnodes > 1 needs --master-addr (the address of node 0, reachable from every node)")
    return Launch(nproc, args.nnodes, args.node_rank, args.master_addr, args.master_port)


def launch_torchrun(launch: Launch, argv: list[str]) -> int:
    """Re-run `posmask <argv>` (a subcommand and its flags) under torchrun as `launch` says.

    `--` ends torchrun's own options, so that it never prefix-matches ours (`--run` is not its
    `--run-path`); `posmask` drops it.
    """
    command = [sys.executable, "-m", "torch.distributed.run", *launch.torchrun_flags(), "-m", "posmask_cli", "--",
               *argv]
    log.info("launching: %s", " ".join(command))
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
