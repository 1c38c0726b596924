"""UCI Census-Income (KDD) loader: 42 named columns, typed and validated.

The shipped file is the UCI ``census-income.test`` half (99,762 rows, comma-separated, no header);
it is the MMoE paper's benchmark (task 1: income > 50K; task 2: never married). String values are
stripped of the leading blank the raw file carries (the raw ``" Never married"`` is ``"Never married"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from intentrank.data.paths import dataset_path
from intentrank.errors import DataError

#: Column names, in file order (see the dataset README).
CENSUS_COLUMNS: Final[tuple[str, ...]] = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour", "hs_college",
    "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex", "union_member",
    "unemp_reason", "full_or_part_emp", "capital_gains", "capital_losses", "stock_dividends",
    "tax_filer_stat", "region_prev_res", "state_prev_res", "det_hh_fam_stat", "det_hh_summ",
    "instance_weight", "mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt",
    "num_emp", "fam_under_18", "country_father", "country_mother", "country_self", "citizenship",
    "own_or_self", "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
)  # fmt: skip

#: Continuous columns (everything else is categorical, including numeric codes such as det_ind_code).
CENSUS_CONTINUOUS: Final[tuple[str, ...]] = (
    "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "instance_weight",
    "num_emp", "weeks_worked",
)  # fmt: skip

#: Numeric-coded categorical columns (parsed as integers, used as categories).
CENSUS_INT_CODES: Final[tuple[str, ...]] = (
    "det_ind_code",
    "det_occ_code",
    "own_or_self",
    "vet_benefits",
    "year",
)

INCOME_LABELS: Final[dict[str, int]] = {"- 50000.": 0, "50000+.": 1}


def census_path() -> Path:
    """The shipped ``census-income.test.gz``."""
    return dataset_path("census-income", "census-income.test.gz")


def load_census_income(path: str | Path | None = None) -> pd.DataFrame:
    """The Census-Income file as a DataFrame with the 42 named columns.

    Continuous and code columns are numeric (float64 / int64), the rest strings; ``income_50k`` keeps
    its raw text. Raises :class:`DataError` naming the file, line or column on a malformed file.
    """
    p = Path(path) if path is not None else census_path()
    if not p.is_file():
        raise DataError(f"census-income file not found: {p}")
    try:
        df = pd.read_csv(
            p, header=None, dtype=str, skipinitialspace=True, keep_default_na=False, compression="infer"
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise DataError(f"{p}: cannot parse as comma-separated census-income data: {err}") from None
    if df.shape[1] != len(CENSUS_COLUMNS):
        raise DataError(f"{p}: expected {len(CENSUS_COLUMNS)} columns per row, found {df.shape[1]}")
    if df.empty:
        raise DataError(f"{p}: no rows")
    df.columns = list(CENSUS_COLUMNS)
    for col in df.columns:
        df[col] = df[col].str.strip()
    for col in (*CENSUS_CONTINUOUS, *CENSUS_INT_CODES):
        num = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy())
        if bad.size:
            raise DataError(
                f"{p}: column {col!r} must be numeric; line {bad[0] + 1} has {df[col].iloc[bad[0]]!r}"
            )
        df[col] = num.astype(np.int64) if col in CENSUS_INT_CODES else num.astype(np.float64)
    unknown = ~df["income_50k"].isin(list(INCOME_LABELS))
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(
            f"{p}: column 'income_50k' must be one of {sorted(INCOME_LABELS)}; "
            f"line {i + 1} has {df['income_50k'].iloc[i]!r}"
        )
    return df


def census_task_labels(df: pd.DataFrame) -> pd.DataFrame:
    """The MMoE paper's two tasks: ``income`` (> 50K) and ``never_married`` (marital_stat = Never married)."""
    return pd.DataFrame(
        {
            "income": df["income_50k"].map(INCOME_LABELS).astype(np.int64).to_numpy(),
            "never_married": (df["marital_stat"] == "Never married").astype(np.int64).to_numpy(),
        },
        index=df.index,
    )
