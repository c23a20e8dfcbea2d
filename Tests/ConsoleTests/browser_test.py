#!/usr/bin/env python3
"""Plays the seed scenario in headless Chromium through the console UI only.

usage: browser_test.py --url http://127.0.0.1:PORT --token TOKEN --out DIR

Seed: Cloud -> Instances -> pick an instance -> Snapshots tab -> Create Snapshot (name) ->
Create Snapshot; roll back with More -> Rebuild -> boot source "my images" -> the snapshot ->
Rebuild Instance. The drive is changed between snapshot and rollback with qemu-io (the guest's
stand-in). Then six snapshots through the dialog: the oldest goes, with a notice. Then an upload
into My images. A screenshot per step goes to DIR. Driven by ConsoleBrowserTests.swift.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

args = argparse.ArgumentParser()
args.add_argument("--url", required=True)
args.add_argument("--token", required=True)
args.add_argument("--out", required=True)
opts = args.parse_args()
os.makedirs(opts.out, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
             "--disable-extensions", "--no-first-run"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
# The console re-renders lists after every action and forms submit by navigating: an element
# found a moment ago can be replaced before it is read, so waits retry on stale references
# instead of failing.
wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
shot_number = 0


def replaced(error):
    """True when the element being read belonged to a page that was replaced meanwhile. Selenium
    calls that a stale reference; chromedriver reports it as a plain WebDriverException, "Node with
    given id does not belong to the document", when a navigation races the read (seen in CI while
    the form that creates an instance was submitting)."""
    return isinstance(error, StaleElementReferenceException) or "does not belong to the document" in str(error)


def wait_for(condition):
    """wait.until, with a replaced element counted as 'not yet' rather than as a failure."""
    def tolerant(d):
        try:
            return condition(d)
        except WebDriverException as error:
            if replaced(error):
                return False
            raise
    return wait.until(tolerant)


def shot(name):
    global shot_number
    shot_number += 1
    path = os.path.join(opts.out, f"{shot_number:02d}-{name}.png")
    driver.save_screenshot(path)
    print("screenshot", path, flush=True)


def step(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def settled(read, attempts=10):
    """Runs `read` again when the page replaced an element it was reading."""
    for attempt in range(attempts):
        try:
            return read()
        except WebDriverException as error:
            if not replaced(error) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def click(by, value):
    def once():
        element = wait_for(EC.element_to_be_clickable((by, value)))
        element.click()
        return element
    return settled(once)


def text_of(css):
    return settled(lambda: wait_for(EC.presence_of_element_located((By.CSS_SELECTOR, css))).text)


def notices():
    return settled(lambda: [n.text for n in driver.find_elements(By.CSS_SELECTOR, ".notice")])


def snapshot_names():
    return settled(lambda: [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#snapshots td.snapshot-name")])


def qemu(*argv):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    if result.returncode != 0 or "failed" in out or "Pattern verification" in out:
        raise AssertionError(f"{' '.join(argv)}: {out}")
    return out


def expect(condition, message):
    if not condition:
        shot("failure")
        raise AssertionError(message)


def create_instance(name):
    driver.get(opts.url + "/instances")
    click(By.ID, "open-create-instance")
    wait_for(EC.visibility_of_element_located((By.ID, "instance-name"))).send_keys(name)
    shot(f"create-instance-{name}")
    click(By.ID, "create-instance-submit")
    wait_for(EC.text_to_be_present_in_element((By.ID, "instance-title"), name))


def create_snapshot(name, screenshot=None):
    click(By.ID, "tab-snapshots")
    click(By.ID, "open-create-snapshot")
    field = wait_for(EC.visibility_of_element_located((By.ID, "snapshot-name")))
    field.send_keys(name)
    if screenshot:
        shot(screenshot)
    click(By.ID, "create-snapshot-submit")
    wait_for(lambda d: name in snapshot_names())


try:
    step("log in with the token")
    driver.get(opts.url + "/instances")
    wait_for(EC.presence_of_element_located((By.ID, "token"))).send_keys(opts.token)
    shot("login")
    click(By.ID, "login")
    wait_for(EC.presence_of_element_located((By.ID, "instances")))

    step("Cloud -> Instances: create instance web1")
    create_instance("web1")
    drive = text_of("#drive-path")
    shot("instance-overview")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0xaa 0 1M", drive)

    step("Instances -> web1 -> Snapshots -> Create Snapshot 'test snapshot'")
    driver.get(opts.url + "/instances")
    click(By.LINK_TEXT, "web1")
    create_snapshot("test snapshot", screenshot="create-snapshot-dialog")
    shot("snapshot-created")

    step("change the drive (qemu-io), take a newer snapshot")
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0xbb 0 512k", drive)
    create_snapshot("after change")
    shot("two-snapshots-space-bars")

    step("More -> Rebuild -> boot source 'my images' -> 'test snapshot'")
    click(By.CSS_SELECTOR, "#more summary")
    click(By.ID, "menu-rebuild")
    Select(wait_for(EC.presence_of_element_located((By.ID, "boot-source")))).select_by_value("my-images")
    wait_for(EC.presence_of_element_located((By.ID, "my-images")))
    shot("rebuild-my-images")
    click(By.XPATH, "//input[@name='image' and @value='web1@test snapshot']")
    warning = wait_for(EC.presence_of_element_located((By.ID, "rebuild-warning"))).text
    doomed = settled(lambda: [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#doomed li")])
    expect(doomed == ["after change"], f"warning lists {doomed}")
    expect("must be powered off" in warning, f"warning: {warning}")
    expect(not driver.find_element(By.ID, "rebuild-button").is_enabled(), "Rebuild Instance enabled before confirming")
    shot("rebuild-warning")
    click(By.ID, "confirm")
    click(By.ID, "rebuild-button")
    wait_for(EC.presence_of_element_located((By.ID, "snapshots")))
    shot("rebuilt")
    said = " ".join(notices())
    expect("rebuilt from snapshot 'test snapshot'" in said and "Deleted snapshots: 'after change'" in said,
           f"notices: {said}")
    expect(snapshot_names() == ["test snapshot"], f"snapshots after rebuild: {snapshot_names()}")

    step("the drive equals the snapshot")
    with tempfile.TemporaryDirectory() as tmp:
        exported = os.path.join(tmp, "snap.qcow2")
        qemu("qemu-img", "convert", "-f", "qcow2", "-l", "snapshot.name=test snapshot", "-O", "qcow2", drive, exported)
        qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", drive, exported)
    qemu("qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0xaa 0 1M", drive)

    step("six snapshots through the dialog: the oldest goes, with a notice")
    create_instance("web2")
    for i in range(1, 7):
        create_snapshot(f"s{i}")
    said = " ".join(notices())
    expect("The oldest snapshot 's1' was deleted automatically" in said, f"notices: {said}")
    expect(sorted(snapshot_names()) == ["s2", "s3", "s4", "s5", "s6"], f"snapshots: {snapshot_names()}")
    shot("retention-notice")

    step("My images: upload with progress")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "tiny.raw")
        with open(raw, "wb") as f:
            f.truncate(4 << 20)
            f.write(b"\x5a" * 65536)
        driver.get(opts.url + "/images")
        driver.find_element(By.ID, "upload-name").send_keys("tiny")
        Select(driver.find_element(By.ID, "upload-format")).select_by_value("raw")
        driver.find_element(By.ID, "upload-file").send_keys(raw)
        click(By.ID, "upload-submit")
        wait_for(EC.presence_of_element_located((By.CSS_SELECTOR, "tr[data-image='tiny']")))
    shot("my-images")

    driver.get(opts.url + "/instances")
    shot("instances-list")
    print("browser_test: PASS")
except Exception as error:  # noqa: BLE001 - report, screenshot, fail
    print("browser_test: FAIL:", error, file=sys.stderr)
    try:
        shot("failure")
    except Exception:  # noqa: BLE001
        pass
    sys.exit(1)
finally:
    driver.quit()
