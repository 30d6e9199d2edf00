"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, stdlib only:
--remote-debugging-pipe takes commands on fd 3 and answers on fd 4, as JSON messages
each ended by a NUL byte. Enough to open a page at a desktop size, wait for it to load,
evaluate an expression in it, list what it fetched and take a screenshot."""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

# No outside network here: without these Chromium keeps trying to reach Google.
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio',
         '--remote-debugging-pipe')


class ChromiumError(Exception):
    pass


class Chromium:
    def __init__(self, executable: str = 'chromium', timeout: float = 60) -> None:
        path = shutil.which(executable)
        if not path:
            raise ChromiumError(f'{executable} is missing: run `make deps` (Debian package '
                                'chromium)')
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix='gp-chromium-')
        commands_read, self.commands = os.pipe()
        self.answers, answers_write = os.pipe()

        def at_3_and_4() -> None:  # in the child, before exec: the pipe's ends at fds 3 and 4
            # Copies above 4 first: either end may itself be fd 3 or 4.
            commands, answers = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
                                 for fd in (commands_read, answers_write))
            os.dup2(commands, 3)  # inheritable: open in chromium
            os.dup2(answers, 4)
            os.close(commands)
            os.close(answers)
        self.log = Path(self.profile) / 'chromium.log'
        with open(self.log, 'wb') as log:
            self.proc = subprocess.Popen(
                [path, *FLAGS, f'--user-data-dir={self.profile}', 'about:blank'],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                close_fds=False, preexec_fn=at_3_and_4)  # the other fds are close-on-exec
        os.close(commands_read)
        os.close(answers_write)
        self.buffer = b''
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.send('Browser.close')
        except ChromiumError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.commands, self.answers):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> 'Chromium':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, deadline: float) -> dict[str, Any]:
        while b'\0' not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                raise ChromiumError('chromium did not answer in time')
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise ChromiumError(f'chromium exited (status {self.proc.poll()}): '
                                    f'{self.log.read_text(errors="replace")[-2000:]}')
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b'\0', 1)
        return dict(json.loads(message))

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """One command; its result. Events that arrive meanwhile are kept in .events."""
        self.next_id += 1
        command: dict[str, Any] = {'id': self.next_id, 'method': method, 'params': params}
        if session:
            command['sessionId'] = session
        os.write(self.commands, json.dumps(command).encode() + b'\0')
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._message(deadline)
            if message.get('id') == self.next_id:
                if 'error' in message:
                    raise ChromiumError(f'{method}: {message["error"]}')
                return dict(message.get('result', {}))
            self.events.append(message)

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events:
                if event.get('method') == method and event.get('sessionId') == session:
                    self.events.remove(event)
                    return event
            self.events.append(self._message(deadline))

    def open(self, url: str, width: int = 1280, height: int = 900) -> 'Tab':
        """A new tab of @width x @height CSS pixels showing @url, loaded."""
        target = self.send('Target.createTarget', url='about:blank')['targetId']
        session = self.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        for domain in ('Page', 'Network', 'Runtime'):
            self.send(f'{domain}.enable', session)
        self.send('Emulation.setDeviceMetricsOverride', session, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.events.clear()
        self.send('Page.navigate', session, url=url)
        self.wait_event('Page.loadEventFired', session)
        return Tab(self, session)


class Tab:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    def evaluate(self, expression: str) -> Any:
        answer = self.browser.send('Runtime.evaluate', self.session, expression=expression,
                                   returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in answer:
            raise ChromiumError(f'{expression[:60]}...: {answer["exceptionDetails"]}')
        return answer['result'].get('value')

    def requests(self) -> list[str]:
        """The URLs the page asked for so far."""
        return [event['params']['request']['url'] for event in self.browser.events
                if event.get('method') == 'Network.requestWillBeSent'
                and event.get('sessionId') == self.session]

    def screenshot(self, path: Path, max_height: int = 12000) -> None:
        """The page from its top, as tall as it is (up to @max_height pixels), as PNG."""
        width, height = self.evaluate('[document.documentElement.scrollWidth, '
                                      'document.documentElement.scrollHeight]')
        shot = self.browser.send('Page.captureScreenshot', self.session, format='png',
                                 captureBeyondViewport=True,
                                 clip={'x': 0, 'y': 0, 'width': width,
                                       'height': min(height, max_height), 'scale': 1})
        path.write_bytes(base64.b64decode(shot['data']))
