"""JupyterLab on 127.0.0.1 with a token, and Debian's Chromium driving it through Playwright.

Used by tests/test_lab.py and by docs/screenshot.py. The server runs on a copy of the
notebook in a temporary directory, so nothing JupyterLab saves lands in the repository;
server and browser are stopped whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(notebook: Path, workdir: Path, env: dict, timeout: float = 120):
    """Yield the URL of ``notebook`` (copied into ``workdir``) in a JupyterLab started for it."""
    shutil.copy(notebook, workdir / notebook.name)
    port, token = free_port(), secrets.token_hex(16)
    home = workdir / ".jupyter-home"
    server_env = {**env, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                  "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                  "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir}", "--allow-root",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    # no prompt about Jupyter news over the page
    notifications = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notifications.parent.mkdir(parents=True)
    notifications.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = open(workdir / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError as e:
                if server.poll() is not None or time.time() > deadline:
                    log_text = (workdir / "jupyterlab.log").read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start: {log_text}") from e
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 1500):
    """A Playwright page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield browser.new_context(viewport={"width": width, "height": height}).new_page()
        finally:
            browser.close()


def run_all_cells(page, timeout: float = 300) -> None:
    """Run the open notebook top to bottom from the Run menu; return when every code cell has run.

    The cells run once the kernel is idle. JupyterLab sometimes asks which kernel to start (when its
    list of kernels arrives late); the kernel it offers is taken, as a reader would, and the cells are
    run again.
    """
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=120_000)
    # cells run before the kernel has connected are dropped (seen on a slow machine: nothing ran in 300 s), so
    # wait until the status bar says the kernel is idle, or until JupyterLab asks which kernel to start
    page.wait_for_function("() => /[|] Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent ?? '')"
                           " || document.querySelector('.jp-Dialog') !== null", timeout=120_000)

    def run_all():
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    run_all()
    deadline = time.time() + timeout
    while True:
        prompts = page.evaluate("Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))"
                                ".map(p => p.textContent.trim())")
        if page.locator(".jp-Dialog").count():
            page.locator(".jp-Dialog .jp-mod-accept").first.click()
            page.wait_for_timeout(2000)
            if all(p == "[ ]:" for p in prompts):  # nothing ran without a kernel: run them now
                run_all()
            continue
        # a code cell that has run shows its execution number: [1]:, [2]:, ...
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return
        if time.time() > deadline:
            raise TimeoutError(f"the notebook did not finish running: prompts {prompts}")
        time.sleep(0.5)


def errors_shown(page) -> list[str]:
    """Text of every error or stderr output the notebook shows."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
