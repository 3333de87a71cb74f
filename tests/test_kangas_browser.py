"""The Kangas grid of §5.2 opened in a real (headless) Chromium: its rows must render."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nsfw_mobilenet.app import kangas_grid
from nsfw_mobilenet.core.taxonomy import FIVE_CLASS

CHROMIUM = Path("/usr/bin/chromium")
# Offline and quiet: no sandbox (containers), no GPU, no QUIC, no background or update traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")]


def rendered_dom(url: str, profile: Path) -> str:
    result = subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_error_grid_rows_render_in_headless_chromium(tmp_path, environment):
    truths = ["drawings", "neutral", "porn", "sexy"]
    guesses = ["neutral", "porn", "porn", "neutral"]  # errors: neutral→porn and sexy→neutral
    paths = []
    for i, truth in enumerate(truths):
        path = tmp_path / "test" / truth / f"tile_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((12, 12, 3), 50 * i, dtype=np.uint8)).save(path)
        paths.append(path)
    probabilities = np.eye(5)[[FIVE_CLASS.index(g) for g in guesses]]
    grid = kangas_grid.save_grid(kangas_grid.build_error_grid(paths, probabilities, truths, FIVE_CLASS),
                                 tmp_path / "grids" / "errors.datagrid", environment)

    with kangas_grid.serve_grid(grid, environment, port=None) as server:
        dom = rendered_dom(server.url, tmp_path / "chromium-profile")
    cells = re.findall(r'class="Cell_cell-content[^"]*"[^>]*>([^<]+)<', dom)
    assert str(paths[1]) in cells and str(paths[3]) in cells
    assert str(paths[0]) not in dom and str(paths[2]) not in dom  # harmless confusion and a correct one
    assert {"Guess", "True class", "sexy", "porn"} <= set(re.sub(r"<[^>]+>", "\n", dom).split("\n"))
    assert "js-plotly-plot" in dom  # column charts are drawn client-side: the page's JavaScript ran
    assert server.process.poll() is not None
