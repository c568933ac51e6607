"""Execute the notebooks headless with this interpreter's kernel, papermill-style parameters optional.

    .venv/bin/python notebooks/execute.py                       # all three, in place: ../lake, ../eval
    .venv/bin/python notebooks/execute.py run_health --param LAKE='"/data/lake"'
    .venv/bin/python notebooks/execute.py evaluation_report --param EVAL_DIR='"../eval"' --out /tmp/report.ipynb

Parameters are injected as a cell tagged ``injected-parameters`` right after the cell tagged ``parameters``
(what papermill does), so the notebook's defaults stay visible. The kernel is always ``sys.executable`` (the
project's venv), never whatever ``python3`` kernelspec happens to be installed on the machine.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ("query_recommendations", "evaluation_report", "run_health")
KERNEL_NAME = "fashion-meta-venv"


def inject_parameters(nb: nbformat.NotebookNode, parameters: dict[str, Any]) -> None:
    """Put ``NAME = value`` lines in a cell after the ``parameters`` cell (replacing an earlier injected one)."""
    cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    at = next((i + 1 for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])), 0)
    if parameters:
        source = "# Parameters injected by notebooks/execute.py\n" + "\n".join(
            f"{name} = {value!r}" for name, value in parameters.items())
        cells.insert(at, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    nb.cells = cells


def _kernel_manager(spec_root: Path) -> KernelManager:
    """A kernel manager whose only kernelspec runs ipykernel on ``sys.executable``."""
    spec_dir = spec_root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fashion-meta .venv)", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(spec_root / "kernels")], ensure_native_kernel=False)
    # IPC sockets beside the kernelspec: nothing listens on TCP, and ipykernel does not warn about it
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm, transport="ipc",
                         ip=str(spec_root / "kernel-ipc"))


def execute(path: str | Path, parameters: dict[str, Any] | None = None, *, cwd: str | Path | None = None,
            timeout: int = 600) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` top to bottom in ``cwd`` (default: its folder); return it with outputs.

    A failing cell raises ``nbclient.exceptions.CellExecutionError`` naming the cell and the error.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, parameters or {})
    with tempfile.TemporaryDirectory(prefix="nb-kernelspec-") as spec_root:
        km = _kernel_manager(Path(spec_root))
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd or path.parent)}})
        try:
            client.execute()
        finally:  # a client given a kernel manager leaves the kernel running
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    # keep the committed metadata independent of this machine's temporary kernelspec
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (fashion-meta .venv)",
                                 "language": "python"}
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="notebooks (default: all)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=LITERAL",
                        help="a parameter as a Python literal, e.g. LAKE='\"/data/lake\"' (repeatable)")
    parser.add_argument("--out", help="write here instead of in place (one notebook only)")
    args = parser.parse_args(argv)
    parameters = {}
    for item in args.param:
        name, _, literal = item.partition("=")
        parameters[name.strip()] = ast.literal_eval(literal)
    if args.out and len(args.names) != 1:
        parser.error("--out needs exactly one notebook")
    for name in args.names:
        path = HERE / f"{Path(name).stem}.ipynb"
        nb = execute(path, parameters)
        target = Path(args.out) if args.out else path
        nbformat.write(nb, target)
        print(f"{path.name}: executed -> {target} ({target.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
