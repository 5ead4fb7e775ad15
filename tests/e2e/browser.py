"""Browser helpers of the console tests: a headless Chromium driven by
Selenium (Debian's `chromium`, `chromium-driver` and `python3-selenium`; run
with /usr/bin/python3), every request the page made (Chrome's performance
log), screenshots kept as test artifacts, and waits that say what they
waited for.

    with Browser(tmp_path) as b:
        b.open('http://127.0.0.1:8080/')
        b.wait(lambda: b.find('[data-tier="gold"]'), 'the gold tier row')
        b.screenshot('loaded')
        b.assert_local_only()
"""

import inspect
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = os.environ.get('TIERFLOW_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('TIERFLOW_CHROMEDRIVER', '/usr/bin/chromedriver')

#: Headless Chromium as root, quiet: no sandbox (root), no GPU, and none of
#: the browser's own background traffic (updates, sync, QUIC probes).
FLAGS = [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-extensions',
    '--disable-default-apps', '--no-default-browser-check',
    '--disable-dev-shm-usage', '--hide-scrollbars', '--lang=en-US',
]

#: Schemes of requests that never leave the browser.
LOCAL_SCHEMES = ('data', 'blob', 'about', 'chrome', 'devtools')


def browser_problems():
    """What is missing to run a browser test (empty when nothing is)."""
    problems = []
    for path, pkg in ((CHROMIUM, 'chromium'), (CHROMEDRIVER, 'chromium-driver')):
        if not (shutil.which(path) or Path(path).exists()):
            problems.append('%s not found (Debian package %s; run scripts/setup.sh)'
                            % (path, pkg))
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append('no selenium module (Debian package python3-selenium; run '
                        'with /usr/bin/python3)')
    return problems


class Browser:
    """One headless Chromium with a fresh profile under `artifacts`; its
    screenshots and the chromedriver log go there too."""

    def __init__(self, artifacts, width=1600, height=1200):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.artifacts = Path(artifacts)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.shots = 0
        self.requests = []
        profile = tempfile.mkdtemp(prefix='chromium-profile-', dir=str(self.artifacts))
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in FLAGS + ['--user-data-dir=%s' % profile,
                             '--window-size=%d,%d' % (width, height)]:
            opts.add_argument(flag)
        opts.set_capability('goog:loggingPrefs', {'performance': 'ALL', 'browser': 'ALL'})
        log = str(self.artifacts / 'chromedriver.log')
        # Selenium 4.8 (Debian 12) names it log_path, later ones log_output.
        params = inspect.signature(Service.__init__).parameters
        kw = {'log_output': log} if 'log_output' in params else {'log_path': log}
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, **kw),
                                       options=opts)
        self.driver.set_page_load_timeout(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

    def quit(self):
        if self.driver is not None:
            try:
                self.collect_requests()
            finally:
                self.driver.quit()
                self.driver = None

    # ------------------------------------------------------------ pages

    def open(self, url):
        self.driver.get(url)

    def find(self, css):
        """The first element matching `css`, or None."""
        from selenium.webdriver.common.by import By
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    def find_all(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        e = self.find(css)
        return e.text if e is not None else None

    def wait(self, cond, what, timeout=10.0, poll=0.1):
        """Calls `cond` until it returns something truthy and returns that;
        fails naming `what`, with a screenshot, after `timeout` seconds.
        Exceptions from `cond` (an element replaced meanwhile) count as
        not yet."""
        from selenium.common.exceptions import WebDriverException
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = cond()
                if v:
                    return v
            except (WebDriverException, LookupError, ValueError, TypeError) as e:
                last = e
            if time.monotonic() > deadline:
                shot = self.screenshot('timeout')
                raise AssertionError('waited %.0fs for %s (last error: %r); screenshot %s;'
                                     ' page errors: %s'
                                     % (timeout, what, last, shot, self.page_errors()))
            time.sleep(poll)

    def screenshot(self, name):
        """Saves a PNG under the artifacts directory and prints its path."""
        self.shots += 1
        shots = self.artifacts / 'screenshots'
        shots.mkdir(exist_ok=True)
        path = shots / ('%02d-%s.png' % (self.shots, name))
        self.driver.save_screenshot(str(path))
        print('screenshot: %s' % path)
        return path

    def session_storage(self, key):
        return self.driver.execute_script('return sessionStorage.getItem(arguments[0])', key)

    # ------------------------------------------------------------ logs

    def page_errors(self):
        """SEVERE entries of the browser console (script errors, failed
        loads). The console logs each failed API call it shows."""
        try:
            return [e['message'] for e in self.driver.get_log('browser')
                    if e.get('level') == 'SEVERE']
        except Exception as e:  # noqa: BLE001 - diagnostics only
            return ['(browser log unavailable: %s)' % e]

    def collect_requests(self):
        """Moves the URLs of the requests the page made since the last call
        (Network.requestWillBeSent, web sockets) into `self.requests`."""
        for entry in self.driver.get_log('performance'):
            msg = json.loads(entry['message'])['message']
            method, params = msg.get('method'), msg.get('params', {})
            if method == 'Network.requestWillBeSent':
                self.requests.append(params['request']['url'])
            elif method == 'Network.webSocketCreated':
                self.requests.append(params['url'])
        return self.requests

    def assert_local_only(self, host='127.0.0.1'):
        """Every request the page made went to `host` (or never left the
        browser: data:, blob:, about:)."""
        urls = self.collect_requests()
        assert urls, 'the performance log recorded no request at all'
        away = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.hostname != host:
                away.append(url)
        assert not away, 'requests that left %s: %s' % (host, sorted(set(away)))
        return urls
