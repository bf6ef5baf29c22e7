"""The `edgebert` console script, which says what to install when the command
line's dependencies are missing (a runtime-only install has just onnxruntime,
tokenizers and numpy)."""

import sys


def main():
    try:
        from edgebert.cli import main as cli
    except ModuleNotFoundError as err:
        sys.stderr.write(f"edgebert: the command line needs the full install (missing "
                         f"{err.name}): pip install 'edgebert[full]'\n")
        sys.exit(2)
    cli()
