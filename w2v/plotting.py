"""Matplotlib for the plot scripts: loaded only when asked for (the optional `plot` extra), figures written as PNG."""
from __future__ import annotations

import sys

INSTALL_HINT = 'pip install -e ".[plot]"'


def pyplot_or_report(script: str):
    """matplotlib.pyplot on the file-only Agg backend; None, after printing how to install it, when
    matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        print(f"error: {script} needs matplotlib: {INSTALL_HINT}", file=sys.stderr)
        return None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    return plt


def save_or_report(fig, output) -> bool:
    """Write `fig` to the PNG `output` and close it; False, after printing why, when that fails."""
    import matplotlib.pyplot as plt
    try:
        fig.tight_layout()
        fig.savefig(output, dpi=90)
    except OSError as e:
        print(f"error: {output}: cannot write the picture ({e.strerror or e})", file=sys.stderr)
        return False
    finally:
        plt.close(fig)
    print(f"wrote {output}")
    return True
