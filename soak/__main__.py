"""``python -m soak`` (what ``make soak`` runs) from the checkout's root."""

from soak.cli import soak

soak(prog_name="python -m soak")
