#!/usr/bin/env python3
"""Drive the dashboard in headless Debian `chromium` over the Chrome DevTools Protocol.

usage: dashboard_browser.py BASE_URL TOKEN VIEWER_TOKEN SCREENSHOT.png

Opens the sign-in link BASE_URL/#token=TOKEN, submits an invalid application through the form (expects the field error from
the 422 problem), then a valid one, and waits until the loan's row shows its final status and its
timeline shows the notification, without a reload, and the operator's action on a loan; then
signs out (the page shows the sign-in box and no data) and signs in through the box as a
viewer, who is offered no action. Saves a screenshot (of the signed-in page) either way. Prints one JSON
object with what it saw; exits non-zero on failure. Needs only `websockets` (pinned in .ci/run).
"""

import asyncio
import json
import sys

from chromium import drive

FIELDS = {
    "applicant.name": "Barbara Liskov",
    "applicant.email": "barbara@example.com",
    "applicant.annual_income": "150000",
    "applicant.monthly_debts": "300",
    "property.address": "12 Harbour Road, Lisbon",
    "property.declared_value": "400000",
    "amount": "200000",
    "term_months": "300",
}


def field(name):
    return f'#apply [name="{name}"]'


async def exercise(browser, base_url, token, report):
    await browser.call("Page.navigate", url=f"{base_url}/#token={token}")
    await browser.wait_for(
        "!!(document.body && document.readyState === 'complete' && document.body.dataset.live === 'open')", "the live stream"
    )
    report["address_after_sign_in"] = await browser.js("location.href")
    await browser.js("window.__sameDocument = 'yes'")

    # An invalid application: the 422 problem's field error shows next to its field.
    for name, value in FIELDS.items():
        await browser.type_into(field(name), "not-an-email" if name == "applicant.email" else value)
    await browser.click("#submit")
    report["field_error"] = await browser.wait_for(
        "document.querySelector('.field-error[data-field=\"applicant.email\"]')?.textContent", "the field error"
    )

    await browser.type_into(field("applicant.email"), FIELDS["applicant.email"])
    await browser.click("#submit")
    loan_id = await browser.wait_for("document.querySelector('#form-result').dataset.loanId", "the new loan's id")
    report["loan_id"] = loan_id
    report["status"] = await browser.wait_for(
        f"(() => {{ const s = document.querySelector('#loans tr[data-id=\"{loan_id}\"]')?.dataset.status;"
        " return ['approved', 'rejected'].includes(s) ? s : null; })()",
        "the final status in the loan's row",
    )
    await browser.wait_for(
        "document.querySelector('#timeline li[data-type=\"ApplicantNotified\"]') !== null", "the notification on the timeline"
    )
    report["timeline"] = await browser.js("[...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)")
    report["timeline_times"] = await browser.js("[...document.querySelectorAll('#timeline li time')].map(t => t.textContent)")
    report["row"] = await browser.js(f"document.querySelector('#loans tr[data-id=\"{loan_id}\"]').innerText")
    report["actors"] = await browser.wait_for(
        "document.querySelectorAll('#actors li[data-kind]').length > 0 && document.querySelector('#actors').innerText",
        "live actor counts",
    )
    # Counts by status, once every loan in the table is finished.
    report["stats"] = await browser.wait_for(
        "(() => { const n = (s) => Number(document.querySelector('#stat-' + s).textContent);"
        " const rows = document.querySelectorAll('#loans tbody tr').length;"
        " const done = n('total') === rows && n('submitted') === 0 && n('evaluating') === 0;"
        " return done && Object.fromEntries(['approved', 'rejected', 'cancelled'].map(s => [s, n(s)])); })()",
        "the counts by status",
    )
    # A cancelled loan's timeline marks its compensation as such (its row was there before).
    cancelled = await browser.js("document.querySelector('#loans tr[data-status=\"cancelled\"]')?.dataset.id")
    if cancelled:
        await browser.click(f'#loans tr[data-id="{cancelled}"]')
        report["compensation"] = await browser.wait_for(
            "(() => { const marked = [...document.querySelectorAll('#timeline li.compensation')]"
            ".filter(li => li.querySelector('.tag')?.textContent === 'compensation').map(li => li.dataset.type);"
            " return document.querySelector('#timeline li[data-type=\"ApplicantNotified\"]') && marked; })()",
            "the compensation on a cancelled loan's timeline",
        )
    report["reloaded"] = await browser.js("window.__sameDocument !== 'yes'")
    report["operator_actions"] = await browser.wait_for(
        "document.body.dataset.role === 'operator' && document.querySelectorAll('#timeline-head .action').length",
        "the operator's action on the selected loan",
    )


async def sign_in_as_viewer(browser, token, report):
    await browser.js(
        "(() => { const i = document.querySelector('#sign-in-form [name=\"token\"]'); i.focus(); i.select(); })()"
    )
    await browser.call("Input.insertText", text=token)
    await browser.js("document.querySelector('#sign-in-form').requestSubmit()")
    await browser.wait_for(
        "!!(document.body && document.readyState === 'complete' && document.body.dataset.live === 'open'"
        " && document.body.dataset.role === 'viewer')",
        "the viewer's live dashboard",
    )
    await browser.wait_for("!!document.querySelector('#loans tbody tr[data-id]')", "a loan row")
    await browser.click("#loans tbody tr[data-id]")
    await browser.wait_for("!!document.querySelector('#timeline-head .title')", "the selected loan's head")
    report["viewer_actions"] = await browser.js("document.querySelectorAll('.action').length")
    report["signed_in_as"] = await browser.js("document.querySelector('#signed-in-as').textContent")


async def sign_out(browser, report):
    await browser.click("#sign-out")
    report["signed_out"] = await browser.wait_for(
        "document.body && document.readyState === 'complete' && document.body.dataset.signedIn === 'no' && ({"
        " sign_in_shown: !document.querySelector('#sign-in').hidden,"
        " data_hidden: document.querySelector('main').hidden,"
        " total: document.querySelector('#stat-total').textContent })",
        "the sign-in box after signing out",
    )


async def run(base_url, token, viewer_token, screenshot):
    async def everything(browser, report):
        try:
            await exercise(browser, base_url, token, report)
            await asyncio.sleep(0.3)  # let the last row flash settle
        finally:
            await browser.screenshot(screenshot)
        report["screenshot"] = screenshot
        await sign_out(browser, report)
        await sign_in_as_viewer(browser, viewer_token, report)

    # The invalid submission's 422 is expected; the browser logs every 4xx response.
    return await drive(everything, expected_errors=("status of 422",))


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    report = asyncio.run(run(sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4]))
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
