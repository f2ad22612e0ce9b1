"""Remake the README's two screenshots (docs/screenshot-console.png, docs/screenshot-verify.png).

    .venv/bin/python scripts/screenshots.py [OUT_DIR]     (default: docs/)

Builds a demo county in a temporary home, serves it on a free 127.0.0.1 port, and drives Debian's headless
Chromium (``scripts/test.sh`` installs it; Playwright from the dev extra): a 梅窖镇 clerk's submission page
with the public-place hygiene permit template chosen, and the public verification page after dropping the
demo's sealed acceptance notice on it. Nothing outside loopback is contacted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(out_dir: Path) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    yizhang = str(Path(sys.executable).parent / "yizhang")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}
    with tempfile.TemporaryDirectory(prefix="yizhang-shots-") as tmp:
        home = Path(tmp) / "home"
        subprocess.run(
            [yizhang, "demo", "--home", str(home), "--json"], env=env, check=True, capture_output=True
        )
        passwords = json.loads((home / "secrets" / "demo-accounts.json").read_text(encoding="utf-8"))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env["YIZHANG_PUBLIC_BASE_URL"] = base
        with (home / "serve.log").open("wb") as log:
            server = subprocess.Popen(
                [yizhang, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                for _ in range(480):
                    try:
                        if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if server.poll() is not None:
                        raise SystemExit("yizhang serve exited: " + str(home / "serve.log"))
                    time.sleep(0.25)
                else:
                    raise SystemExit("yizhang serve did not answer /healthz")
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                    page = browser.new_page(locale="zh-CN", viewport={"width": 1200, "height": 900})
                    page.goto(base + "/ui/login")
                    page.fill("#username", "mj.clerk")
                    page.fill("#password", passwords["mj.clerk"])
                    page.click("#login")
                    page.wait_for_url("**/ui/clerk")
                    page.select_option("#template", "public_place_hygiene_permit")
                    page.click("#choose-template")
                    page.wait_for_selector("#f_unit_name")
                    page.screenshot(path=str(out_dir / "screenshot-console.png"))
                    page.click("#logout")
                    page.goto(base + "/verify")
                    page.set_input_files("#file", str(home / "sealed" / "acceptance_notice.pdf"))
                    page.click("#verify")
                    page.wait_for_selector("#verdict")
                    page.screenshot(path=str(out_dir / "screenshot-verify.png"), full_page=True)
                    browser.close()
            finally:
                server.terminate()
                server.wait(timeout=30)
    print(f"wrote {out_dir / 'screenshot-console.png'} and {out_dir / 'screenshot-verify.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs")
