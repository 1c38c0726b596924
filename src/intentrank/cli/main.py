"""The ``intentrank`` command. Each part registers its commands from its own module here."""

from __future__ import annotations

import typer

from intentrank import __version__

app = typer.Typer(
    name="intentrank",
    help="Feed ranking that optimises for what users want, not what they click.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """intentrank: clickbait scoring, multi-task ranking, mitigation, simulation and experiments."""


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


# --- part registrations (one line per part; keep this list in layer order) ---
from intentrank.cli.clickbait import clickbait_app  # noqa: E402

app.add_typer(clickbait_app, name="clickbait")
from intentrank.cli.config_cmd import config_app  # noqa: E402

app.add_typer(config_app, name="config")
from intentrank.cli.store import store_app  # noqa: E402

app.add_typer(store_app, name="store")
from intentrank.cli.simulate import simulate_app  # noqa: E402

app.add_typer(simulate_app, name="simulate")
from intentrank.cli.train import evaluate, train  # noqa: E402

app.command("train")(train)
app.command("evaluate")(evaluate)
from intentrank.cli.run import run  # noqa: E402

app.command("run")(run)
from intentrank.cli.ope import ope  # noqa: E402

app.command("ope")(ope)
from intentrank.cli.tune import tune  # noqa: E402

app.command("tune")(tune)
from intentrank.cli.abtest import abtest  # noqa: E402

app.command("abtest")(abtest)
from intentrank.cli.serve import serve  # noqa: E402

app.command("serve")(serve)


if __name__ == "__main__":  # pragma: no cover
    app()
