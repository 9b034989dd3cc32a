"""The files users copy (examples/, the README's configuration reference) stay valid and in sync with the code."""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("HEALTHD_BIN", str(ROOT / "build" / "healthd"))


def example_configs():
    return sorted(p for p in (ROOT / "examples").rglob("*.json") if "ansible" not in p.parts)


@pytest.mark.parametrize("path", example_configs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_example_config_is_valid(path, tmp_path):
    # Secrets live in files the example names under /etc; give the copy readable stand-ins, nothing else changes.
    text = path.read_text()
    secret = tmp_path / "secret"
    secret.write_text("example-secret\n")
    secret.chmod(0o600)
    text = re.sub(r'"(password_file|ca)": "/etc/[^"]+"', lambda m: f'"{m.group(1)}": "{secret}"', text)
    copy = tmp_path / path.name
    copy.write_text(text)
    proc = subprocess.run([BIN, "--config", str(copy), "--check-config"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_readme_reference_matches_the_code():
    generated = subprocess.run([BIN, "--config-reference"], capture_output=True, text=True, check=True).stdout
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- BEGIN CONFIG REFERENCE -->\n(.*)<!-- END CONFIG REFERENCE -->", readme, re.S)
    assert m, "README.md lost its configuration reference markers"
    assert m.group(1).strip() == generated.strip(), "README's reference is stale: run `make docs`"
