#!/usr/bin/env python3
"""Drive the applicant's page in headless Debian `chromium` (a phone-sized viewport) over CDP.

usage: applicant_browser.py PAGE_URL WRONG_TOKEN_URL SCREENSHOT.png

Opens PAGE_URL (`/applications/{id}#token=...`), waits until the page shows the loan under review
on its live stream and prints `{"ready": true}`; the test then asks for information as an
underwriter. Waits for the request's form, prints `{"seen": [fields]}`, takes the screenshot,
fills every field and sends the answers, waits for the page to show the loan under review again;
withdraws the application with the page's button and waits for it to show the loan cancelled;
then opens WRONG_TOKEN_URL and reads the message the page shows. Prints one JSON report last;
exits non-zero on failure. Needs only `websockets` (pinned in .ci/run).
"""

import asyncio
import json
import sys

from chromium import drive, say

REQUEST_TIMEOUT = 5.0  # the test checks the tighter bound itself, from the request's answer


async def exercise(browser, page_url, wrong_url, screenshot, report):
    await browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    await browser.call("Page.navigate", url=page_url)
    await browser.wait_for(
        "!!(document.body && document.readyState === 'complete' && document.body.dataset.live === 'open'"
        " && document.body.dataset.status === 'under_review')",
        "the live page showing the loan under review",
    )
    report["address_after_open"] = await browser.js("location.href")
    report["no_horizontal_scroll"] = await browser.js("document.documentElement.scrollWidth <= window.innerWidth")
    await browser.js("window.__sameDocument = 'yes'")
    say({"ready": True})

    fields = await browser.wait_for(
        "(() => { const s = document.querySelector('#request');"
        " return !!s && !s.hidden && [...s.querySelectorAll('textarea')].map(t => t.name); })()",
        "the information request's form",
        timeout=REQUEST_TIMEOUT,
    )
    say({"seen": fields})
    report["fields"] = fields
    report["inputs"] = await browser.js(
        "[...document.querySelectorAll('#request textarea')].map(t => ({name: t.name,"
        " required: t.required, maxlength: t.maxLength}))"
    )
    report["message"] = await browser.js("document.querySelector('#request-message').textContent")
    report["countdown"] = await browser.wait_for(
        "(() => { const t = document.querySelector('#countdown').textContent; return /\\d\\d:\\d\\d:\\d\\d/.test(t) && t; })()",
        "the countdown",
    )
    for i, name in enumerate(fields):
        await browser.js(f"document.querySelectorAll('#request textarea')[{i}].focus()")
        await browser.call("Input.insertText", text=f"my {name}, typed in the browser")
    first = json.dumps(report["countdown"])
    report["countdown_later"] = await browser.wait_for(
        f"(() => {{ const t = document.querySelector('#countdown').textContent; return t !== {first} && t; }})()",
        "the countdown moving on",
        timeout=5.0,
    )
    await browser.screenshot(screenshot)
    await browser.click("#send-answers")
    report["after_answer"] = await browser.wait_for(
        "(() => { const n = document.querySelector('#notice');"
        " return document.body.dataset.status === 'under_review' && !n.hidden"
        " && document.querySelector('#request').hidden && n.textContent; })()",
        "the page back under review after the answers",
    )
    report["reloaded"] = await browser.js("window.__sameDocument !== 'yes'")

    # The withdraw button: its confirmation answered yes (and its question kept), then the page
    # follows the loan to its end on the stream: cancelled, the button gone.
    await browser.js("window.confirm = (question) => { window.__asked = question; return true; }")
    await browser.click("#withdraw")
    report["withdraw_asked"] = await browser.wait_for("window.__asked || false", "the withdrawal's confirmation")
    report["after_withdraw"] = await browser.wait_for(
        "document.body.dataset.status === 'cancelled' && document.querySelector('#withdraw-panel').hidden"
        " && document.body.dataset.status",
        "the page showing the loan cancelled after the withdrawal",
        timeout=10.0,
    )

    # A fresh document: a link differing only in its fragment would not load the page again.
    await browser.call("Page.navigate", url="about:blank")
    await browser.wait_for("location.href === 'about:blank'", "the blank page")
    await browser.call("Page.navigate", url=wrong_url)
    report["wrong_token"] = await browser.wait_for(
        "document.body && document.body.dataset.state === 'refused' && !document.querySelector('#refused').hidden"
        " && document.querySelector('#summary').hidden && document.querySelector('#refused-reason').textContent",
        "the message for a wrong token",
    )


async def run(page_url, wrong_url, screenshot):
    async def everything(browser, report):
        await exercise(browser, page_url, wrong_url, screenshot, report)

    # The wrong token's 401s are expected; the browser logs every 4xx response.
    return await drive(everything, failure_screenshot=screenshot, expected_errors=("status of 401",))


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    report = asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
    say(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
