"""What the tests share: helpers, the reference model, stand-in servers. Never a test itself."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: core/, tui/, tests/
