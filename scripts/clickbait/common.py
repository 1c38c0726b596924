"""What the clickbait training scripts share: default paths, the prepared corpus and its metrics.

The scripts run as ``.venv/bin/python scripts/clickbait/<name>.py`` from the repository root (their own
folder is then on ``sys.path``, so ``import common`` finds this file). Only light imports here, so every
script answers ``--help`` at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Repository root (scripts/clickbait/common.py -> ../..).
REPO = Path(__file__).resolve().parents[2]
#: Where prep.py writes the corpus and the other scripts read it (``runs/`` is git-ignored).
DEFAULT_WORK = REPO / "runs" / "clickbait-training"

#: Row parts of the prepared corpus: 0 fit, 1 validation (both inside the training 80%), 2 held-out test.
FIT, VAL, TEST = 0, 1, 2


@dataclass
class Prepared:
    """The arrays prep.py writes (``corpus.npz`` + ``titles.json``): one row per normalised title.

    ``y`` regression target, ``label`` binary label, ``src`` 0 Webis-17 / 1 Stop Clickbait, ``part``
    (FIT/VAL/TEST), ``w`` row weight, ``lex_fit`` / ``lex_train`` lexical predictions from models fit on
    the fit part / the whole training 80%.
    """

    titles: list[str]
    y: np.ndarray
    label: np.ndarray
    src: np.ndarray
    part: np.ndarray
    w: np.ndarray
    lex_fit: np.ndarray
    lex_train: np.ndarray

    @classmethod
    def load(cls, work: Path) -> Prepared:
        """Read ``work/corpus.npz`` and ``work/titles.json``; a clear error if prep.py has not run."""
        npz, js = work / "corpus.npz", work / "titles.json"
        if not npz.is_file() or not js.is_file():
            raise SystemExit(
                f"error: {work} has no corpus.npz/titles.json; run scripts/clickbait/prep.py first"
            )
        z = np.load(npz)
        titles = json.loads(js.read_text())
        return cls(titles, *(z[k] for k in ("y", "label", "src", "part", "w", "lex_fit", "lex_train")))

    def metrics(self, p: np.ndarray, part: int) -> dict[str, float]:
        """Webis-17 AUC and MSE, Stop accuracy at 0.5 on the rows of ``part`` (p clipped to 0..1)."""
        from intentrank.clickbait.training import auc

        p = np.clip(p, 0, 1)
        wv = (self.src == 0) & (self.part == part)
        sv = (self.src == 1) & (self.part == part)
        return {
            "auc": round(auc(self.label[wv], p[wv]), 4),
            "mse": round(float(np.mean((p[wv] - self.y[wv]) ** 2)), 5),
            "stop_acc": round(float(np.mean((p[sv] >= 0.5) == (self.label[sv] == 1))), 4),
        }

    def stack_weights(self, lex: np.ndarray, member: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """Weighted least squares ``y ~ 1 + lex + member`` on the validation rows: the stack weights."""
        v = self.part == VAL
        ww = (self.w if w is None else w)[v]
        A = np.stack([np.ones(v.sum()), lex[v], member[v]], 1)
        return np.linalg.lstsq(A * np.sqrt(ww)[:, None], self.y[v] * np.sqrt(ww), rcond=None)[0]


def work_arg(help_suffix: str = "") -> dict[str, object]:
    """argparse keyword arguments of the shared ``--work`` option."""
    return {
        "type": Path,
        "default": DEFAULT_WORK,
        "help": f"folder of prep.py's corpus.npz/titles.json (default: runs/clickbait-training){help_suffix}",
    }
