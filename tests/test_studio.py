"""ftkit studio in headless Chromium: each screen clicked through as a person would, on a real
uvicorn server (a free 127.0.0.1 port) over a runs folder in tmp_path, with tiny models.

FTKIT_SCREENSHOTS=docs/studio saves a screenshot of each screen there (README's pictures).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import POSITIVE, run_cli, sentiment_rows, write_csv, write_image_folder

from ftkit import api
from ftkit.webstudio.app import create_studio

SHOTS = os.environ.get("FTKIT_SCREENSHOTS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def studio_at(root: Path, **options):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_studio(root, api, **options), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_for(check, seconds: float = 90, what: str = "the page"):
    deadline = time.time() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001  (the element is not there yet)
            pass
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def shot(driver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.set_window_size(1280, 1000)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def text_of(driver, css: str) -> str:
    return driver.find_element("css selector", css).text


def no_js_errors(driver) -> None:
    # 4xx answers the test asked for show up as "network" entries; script errors are "javascript"
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not severe, severe


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("studio-data")
    rows = sentiment_rows(120, 3)
    rows += rows[:2]  # two duplicates for the doctor to find
    return {"train": write_csv(root / "reviews.csv", rows), "bad": write_csv(root / "bad.csv", [{"x": "1"}])}


def fill(driver, css: str, value: str) -> None:
    el = driver.find_element("css selector", css)
    el.clear()
    el.send_keys(value)


def start_fit(driver, base: str, data_file: Path, model: Path, name: str, epochs: int, settings: str = "") -> None:
    driver.get(base + "/new")
    driver.find_element("css selector", "#file").send_keys(str(data_file))
    driver.find_element("css selector", "#inspect").click()
    wait_for(lambda: not driver.find_element("css selector", "#setup").get_attribute("hidden"), what="the detected columns")
    fill(driver, "#model_path", str(model))
    driver.execute_script("document.querySelector('#mode').value = 'fit'")
    fill(driver, "#epochs", str(epochs))
    fill(driver, "#name", name)
    fill(driver, "#settings", settings)
    driver.find_element("css selector", "#start").click()
    wait_for(lambda: driver.current_url.endswith("/runs/" + name), what="the live page")


def test_new_run_screen_shows_columns_doctor_and_refuses_bad_input(browser, tmp_path, tiny_model, data):
    with studio_at(tmp_path / "runs", max_upload_mb=1) as base:
        browser.set_window_size(1280, 1000)
        browser.get(base + "/new")
        browser.find_element("css selector", "#file").send_keys(str(data["train"]))
        browser.find_element("css selector", "#inspect").click()
        look = wait_for(lambda: text_of(browser, "#look") if "rows" in text_of(browser, "#look") else "", what="look")
        assert "text-classification" in look and "122 rows" in look and "text, label" in look
        findings = text_of(browser, "#findings")
        assert "duplicates" in findings and "2 repeated input(s)" in findings
        assert browser.find_element("css selector", "#text_column").get_attribute("value") == "text"
        assert browser.find_element("css selector", "#label_column").get_attribute("value") == "label"
        assert "minilm" in browser.find_element("css selector", "#model").get_attribute("value")  # a text model first
        fill(browser, "#model_path", str(tiny_model))
        browser.find_element("css selector", "#advise").click()  # advise: strategies with time estimates
        advice = wait_for(lambda: text_of(browser, "#advice") if "est. total" in text_of(browser, "#advice") else "",
                          120, "the advice")
        assert "full" in advice and "lora" in advice and text_of(browser, "#recommendation")
        fill(browser, "#label_column", "nope")
        browser.execute_script("document.querySelector('#mode').value = 'fit'")
        browser.find_element("css selector", "#start").click()
        error = wait_for(lambda: text_of(browser, "#start-error"), what="the form's error")
        assert "nope" in error and "\n" not in error  # the same one line `ftkit fit` prints
        shot(browser, "new-run")
        assert not [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]  # nothing started
        # a file that is not data, and one over the upload cap: refused in the form, nothing kept
        (tmp_path / "notes.exe").write_bytes(b"MZ\x90\x00")
        (tmp_path / "big.csv").write_text("text,label\n" + "x,y\n" * 400_000)
        for path, words in ((tmp_path / "notes.exe", "not a table"), (tmp_path / "big.csv", "capped")):
            browser.get(base + "/new")
            browser.find_element("css selector", "#file").send_keys(str(path))
            browser.find_element("css selector", "#inspect").click()
            assert words in wait_for(lambda: text_of(browser, "#inspect-error"), what="upload error")
        uploads = tmp_path / "runs" / ".studio" / "uploads"
        assert not any(p.name.endswith(".csv") and p.stat().st_size > 2**20 for p in uploads.rglob("*"))
        no_js_errors(browser)


def test_live_run_stop_resume_runs_compare_delete_and_try_it(browser, tmp_path, tiny_model, data):
    root = tmp_path / "runs"
    with studio_at(root) as base:
        browser.set_window_size(1280, 1000)
        # 1. a short run to the end: progress, curves, report
        start_fit(browser, base, data["train"], tiny_model, "short", 3)
        assert wait_for(lambda: text_of(browser, "#state") == "finished", 180, "the run to finish")
        assert "accuracy" in text_of(browser, "#result")
        assert "step" in text_of(browser, "#numbers") and "samples/s" in text_of(browser, "#numbers")
        assert browser.find_elements("css selector", "#loss svg path")
        assert browser.find_element("css selector", "#report-link")
        shot(browser, "live-run")
        assert (root / "short" / "summary.json").is_file()  # an ordinary run folder
        # 2. a long run: Stop keeps it resumable, Resume goes on
        start_fit(browser, base, data["train"], tiny_model, "long", 400,
                  "train.patience=100000\ntrain.checkpoint_every=20")  # no early stop: it runs until stopped
        wait_for(lambda: text_of(browser, "#state") == "running" and "step 0 " not in text_of(browser, "#numbers"),
                 120, "training steps")
        browser.find_element("css selector", "#stop").click()
        try:
            wait_for(lambda: text_of(browser, "#state") == "stopped", 60, "the run to stop")
        except AssertionError:  # say what the page shows instead
            raise AssertionError(f"not stopped: state {text_of(browser, '#state')!r}, "
                                 f"{text_of(browser, '#numbers')!r}, {browser.find_element('css selector', 'body').text[-600:]!r}") from None
        stopped_at = json.loads((root / "long" / "metrics.jsonl").read_text().splitlines()[-1])["step"]
        wait_for(lambda: browser.find_element("css selector", "#resume").is_displayed(), 10, "Resume")
        browser.find_element("css selector", "#resume").click()
        wait_for(lambda: text_of(browser, "#state") == "running", 60, "the run to resume")
        wait_for(lambda: json.loads((root / "long" / "metrics.jsonl").read_text().splitlines()[-1])["step"] > stopped_at,
                 120, "steps after resuming")
        browser.find_element("css selector", "#stop").click()
        wait_for(lambda: text_of(browser, "#state") == "stopped", 60, "the run to stop again")
        # 3. runs: filter, sort, compare, delete (with confirmation)
        browser.get(base + "/runs")
        wait_for(lambda: len(browser.find_elements("css selector", "#runs tr[data-run]")) == 2, what="two runs")
        table = text_of(browser, "#runs")
        assert "finished" in table and "stopped" in table and "accuracy" in table
        fill(browser, "#filter", "short")
        assert [r.get_attribute("data-run") for r in browser.find_elements("css selector", "#runs tr[data-run]")] == ["short"]
        fill(browser, "#filter", "")
        browser.find_element("css selector", "th[data-key=name]").click()
        assert [r.get_attribute("data-run") for r in browser.find_elements("css selector", "#runs tr[data-run]")] == ["long", "short"]
        shot(browser, "runs")
        for box in browser.find_elements("css selector", ".pick"):
            box.click()
        browser.find_element("css selector", "#compare").click()
        wait_for(lambda: len(browser.find_elements("css selector", "#table tr")) == 3, what="the comparison")
        assert browser.find_elements("css selector", "#loss svg path") and "short" in text_of(browser, "#loss")
        shot(browser, "compare")
        browser.get(base + "/runs")
        wait_for(lambda: browser.find_elements("css selector", "button.delete[data-run=long]"), what="delete")
        browser.find_element("css selector", "button.delete[data-run=long]").click()
        browser.switch_to.alert.dismiss()  # "no": nothing happens
        assert (root / "long").is_dir()
        browser.find_element("css selector", "button.delete[data-run=long]").click()
        browser.switch_to.alert.accept()
        wait_for(lambda: not (root / "long").exists(), 10, "the folder to go")
        # 4. try it: the finished run's prediction for a typed text
        browser.get(base + "/try")
        wait_for(lambda: browser.find_element("css selector", "#run option"), what="finished runs")
        fill(browser, "#text", f"a {POSITIVE[0]} film")
        browser.find_element("css selector", "#go").click()
        shown = wait_for(lambda: text_of(browser, "#out") if "%" in text_of(browser, "#out") else "", what="prediction")
        expected = api.load(root / "short").predict([f"a {POSITIVE[0]} film"])[0]
        assert expected["label"] in shown
        shot(browser, "try-it")
        no_js_errors(browser)
    # the studio keeps no state of its own: a new one over the same folder shows the same runs
    with studio_at(root) as base:
        runs = httpx.get(base + "/api/runs").json()
        assert [(r["name"], r["status"]) for r in runs] == [("short", "finished")]


def test_try_it_predicts_an_uploaded_image_as_the_run_does(tiny_resnet, images, tmp_path):
    """Try it's upload path (multipart, as the page's file input sends it): the same prediction as
    `ftkit.load(run).predict`; a file that is not an image gets a 4xx line and the studio keeps serving."""
    root = tmp_path / "runs"
    result = run_cli("fit", "--task", "image-classification", "--model", tiny_resnet, "--train", images["train"],
                     "--out", root / "img", "--epochs", "1", "--batch-size", "16", "--quiet",
                     "--set", "train.threads=1", "--set", "data.image_size=20", "--set", "data.validation_size=0")
    assert result.returncode == 0, result.stderr
    picture = sorted(f for f in write_image_folder(tmp_path / "new", 3, 7).rglob("*") if f.is_file())[0]
    local = api.load(root / "img").predict([str(picture)])
    with studio_at(root) as base, httpx.Client(base_url=base, timeout=60) as client:
        reply = client.post("/api/predict/img", files={"file": (picture.name, picture.read_bytes(), "image/png")})
        assert reply.status_code == 200, reply.text
        served = reply.json()["predictions"]
        assert [p["label"] for p in served] == [p["label"] for p in local]
        assert served[0]["score"] == pytest.approx(local[0]["score"], abs=1e-5)
        bad = client.post("/api/predict/img", files={"file": ("broken.png", b"\x89PNG\r\n", "image/png")})
        assert 400 <= bad.status_code < 500 and "broken.png" in bad.text
        assert client.post("/api/predict/img", files={"file": (picture.name, picture.read_bytes(), "image/png")}
                           ).json()["predictions"] == served
    assert not list((root / ".studio").rglob("try-*"))  # the upload's scratch folder is gone


def write_tone_clips(folder: Path, n: int, seed: int) -> Path:
    """folder/low/*.wav (~300 Hz) and folder/high/*.wav (~1200 Hz), 0.5-1 s at 8 kHz."""
    import numpy as np
    import soundfile

    rng = np.random.default_rng(seed)
    for i in range(n):
        label = ("low", "high")[i % 2]
        t = np.arange(int(8000 * rng.uniform(0.5, 1.0))) / 8000
        clip = 0.3 * np.sin(2 * np.pi * (300 if label == "low" else 1200) * rng.uniform(0.9, 1.1) * t)
        (folder / label).mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / label / f"{i:03d}.wav", clip.astype(np.float32), 8000)
    return folder


def test_try_it_predicts_an_uploaded_clip_as_the_run_does(tiny_whisper, tmp_path):
    """Try it with an audio clip (multipart, as the page's file input sends it): the prediction of
    `ftkit.load(run).predict`; bytes that are not audio get a 4xx line naming the upload."""
    root = tmp_path / "runs"
    train = write_tone_clips(tmp_path / "tones", 16, 1)
    result = run_cli("fit", "--task", "audio-classification", "--model", tiny_whisper, "--train", train,
                     "--out", root / "clips", "--strategy", "linear-probe", "--epochs", "2", "--batch-size", "8",
                     "--quiet", "--set", "train.threads=1", "--set", "data.validation_size=0")
    assert result.returncode == 0, result.stderr
    clip = sorted(write_tone_clips(tmp_path / "new", 2, 9).rglob("*.wav"))[0]
    local = api.load(root / "clips").predict([str(clip)])
    with studio_at(root) as base, httpx.Client(base_url=base, timeout=60) as client:
        reply = client.post("/api/predict/clips", files={"file": (clip.name, clip.read_bytes(), "audio/wav")})
        assert reply.status_code == 200, reply.text
        served = reply.json()["predictions"]
        assert [p["label"] for p in served] == [p["label"] for p in local]
        assert served[0]["score"] == pytest.approx(local[0]["score"], abs=1e-5)
        bad = client.post("/api/predict/clips", files={"file": ("noise.wav", b"RIFF\x00\x01junk", "audio/wav")})
        assert 400 <= bad.status_code < 500 and "noise.wav" in bad.text and "\n" not in bad.json()["error"]
        assert client.get("/api/runs").status_code == 200  # still serving
    assert not list((root / ".studio").rglob("try-*"))


@pytest.mark.slow  # auto spends its whole budget (90 s: the advice alone took 40 s beside other work)
def test_auto_run_started_from_the_new_run_screen_shows_its_stages_and_finishes(browser, tmp_path, tiny_model, data):
    """New run with mode auto (the default) and a time budget: the live page walks through
    doctor -> advise -> choose -> tune -> final and ends with the final run's metric; the folder
    is an ordinary `ftkit auto` folder."""
    root = tmp_path / "runs"
    with studio_at(root) as base:
        browser.set_window_size(1280, 1000)
        browser.get(base + "/new")
        browser.find_element("css selector", "#file").send_keys(str(data["train"]))
        browser.find_element("css selector", "#inspect").click()
        wait_for(lambda: not browser.find_element("css selector", "#setup").get_attribute("hidden"), what="columns")
        fill(browser, "#model_path", str(tiny_model))
        assert browser.find_element("css selector", "#mode").get_attribute("value") == "auto"
        fill(browser, "#time_budget", "90s")
        fill(browser, "#name", "auto1")
        browser.find_element("css selector", "#start").click()
        wait_for(lambda: browser.current_url.endswith("/runs/auto1"), what="the live page")
        wait_for(lambda: browser.find_elements("css selector", "#stages span"), 60, "the stages")
        seen_running = text_of(browser, "#state") == "running"
        end = wait_for(lambda: text_of(browser, "#state") if text_of(browser, "#state") in ("finished", "failed", "stopped")
                       else "", 300, "auto to end")
        assert end == "finished", text_of(browser, "#error")
        stages = [s.text for s in browser.find_elements("css selector", "#stages span")]
        assert [s.split()[0] for s in stages] == ["doctor", "advise", "choose", "tune", "final"]
        assert all(s.endswith("✓") for s in stages), stages
        assert "accuracy" in text_of(browser, "#result")
        no_js_errors(browser)
    assert seen_running or (root / "auto1" / "auto.json").is_file()
    report = json.loads((root / "auto1" / "auto.json").read_text())
    assert (root / "auto1" / "final" / "summary.json").is_file() and report["final_run"]
    assert api.load(root / "auto1" / "final").predict(["a fine film"])[0]["label"]


def test_try_it_shows_a_multilabel_runs_labels_above_their_thresholds(browser, tmp_path, tiny_model):
    """A multi-label run in Try it: the labels ftkit.load(run).predict returns, as badges."""
    import random

    from conftest import FILLER, NEGATIVE

    rng = random.Random(4)
    rows = []
    for i in range(160):
        kinds = [["pos"], ["neg"], ["neg", "pos"]][i % 3]
        words = [rng.choice(FILLER) for _ in range(4)]
        words += [rng.choice(POSITIVE)] * ("pos" in kinds) + [rng.choice(NEGATIVE)] * ("neg" in kinds)
        rows.append({"text": " ".join(rng.sample(words, len(words))), "label": "|".join(kinds)})
    root = tmp_path / "runs"
    result = run_cli("fit", "--model", tiny_model, "--train", write_csv(tmp_path / "tags.csv", rows), "--label-sep", "|",
                     "--out", root / "tags", "--epochs", "4", "--batch-size", "8", "--lr", "3e-3", "--quiet",
                     "--set", "train.threads=1", "--set", "eval.bootstrap=0")
    assert result.returncode == 0, result.stderr
    text = f"a {POSITIVE[0]} and {NEGATIVE[0]} film"
    expected = api.load(root / "tags").predict([text])[0]["labels"]
    with studio_at(root) as base:
        browser.get(base + "/try")
        wait_for(lambda: browser.find_element("css selector", "#run option"), what="finished runs")
        fill(browser, "#text", text)
        browser.find_element("css selector", "#go").click()
        shown = wait_for(lambda: text_of(browser, "#out") if "%" in text_of(browser, "#out") else "", what="prediction")
        badges = [b.text for b in browser.find_elements("css selector", "#out .badge")]
        assert badges == expected and (expected or "no label above its threshold" in shown)
        no_js_errors(browser)
