#!/usr/bin/env python3
"""Drive the dashboard's work queue and process view in headless Debian `chromium` over CDP.

usage: queue_browser.py queue BASE_URL UNDERWRITER_TOKEN VIEWER_TOKEN SCREENSHOT.png
       queue_browser.py race BASE_URL FIRST_UNDERWRITER_TOKEN SECOND_UNDERWRITER_TOKEN
       queue_browser.py process BASE_URL TOKEN SCREENSHOT.png

queue: signs in as an underwriter (the page opens on the work queue), prints `{"ready": true}`;
waits for the test's QUEUED loans to appear live (the first escalated), prints `{"queued": [ids
in page order], "first": its figures, "escalated": [ids marked]}`; claims the first, approves
the second with a note, asks the applicant of the third for information, extends that deadline,
takes the screenshot, prints `{"asked": id}`; waits for the answer (the test gives it through
the API) to bring the loan back under review and reads the answers in its history; then opens
a second tab as a viewer and counts the buttons it is offered.

race: two tabs, one per underwriter, on the one loan under review. The first tab's decision is
held in the browser (Fetch interception) while the second tab approves; once the first tab has
seen the loan leave its queue live, its decision goes on, and the page shows the 409 with the
loan's current state.

process: opens the process view, prints `{"ready": true, "counts": {...}}`; the test submits
referred loans: waits for the underwriter count to rise by RISE, lists that step's loans,
takes the screenshot, prints `{"listed": [ids]}`; the test decides all but one and asks the last
one's applicant for information: waits for the underwriter count to fall back, the applicant
count to rise by one and the listed step to empty.

Prints one JSON report last; exits non-zero on failure.
"""

import asyncio
import json
import sys

from chromium import drive, say

QUEUED = 4  # loans the queue test submits
RACED = 1  # loans the race test submits
RISE = 3  # loans the process test submits


def card(loan_id):
    return f'#review-queue li.card[data-id="{loan_id}"]'


async def open_dashboard(browser, base_url, token, role):
    await browser.call("Page.navigate", url=f"{base_url}/#token={token}")
    await browser.wait_for(
        "!!(document.body && document.readyState === 'complete' && document.body.dataset.live === 'open'"
        f" && document.body.dataset.role === '{role}')",
        f"the live dashboard as {role}",
    )
    await browser.js("window.__sameDocument = 'yes'")


async def cards(browser, count, what, timeout=30):
    return await browser.wait_for(
        f"(() => {{ const ids = [...document.querySelectorAll('#review-queue li.card')].map(c => c.dataset.id);"
        f" return ids.length === {count} && ids; }})()",
        what,
        timeout,
    )


async def figures(browser, loan_id):
    return await browser.js(
        f"(() => {{ const c = document.querySelector({json.dumps(card(loan_id))});"
        " const v = (k) => c.querySelector('.figure.' + k + ' .v').textContent;"
        " return {score: v('score'), ltv: v('ltv'), dti: v('dti'), payment: v('payment'),"
        " meta: c.querySelector('.meta').textContent, escalated: c.dataset.escalated}; })()"
    )


async def queue(browser, base_url, token, viewer_token, screenshot, report):
    await open_dashboard(browser, base_url, token, "underwriter")
    report["opened_on"] = await browser.wait_for("document.body.dataset.view === 'queue' && 'queue'", "the queue view")
    say({"ready": True})

    # The test has the first loan escalated before it submits the others.
    ids = await cards(browser, QUEUED, "the referred loans, live", timeout=90)
    report["queued"] = ids
    escalated = await browser.wait_for(
        "(() => { const ids = [...document.querySelectorAll('#review-queue li.card[data-escalated=\"true\"]')]"
        ".filter(c => c.querySelector('.tag.escalated')).map(c => c.dataset.id); return ids.length > 0 && ids; })()",
        "the escalated loan, marked",
    )
    say({"queued": ids, "first": await figures(browser, ids[0]), "escalated": escalated})

    first, approved, second = ids[0], ids[1], ids[2]
    await browser.click(f"{card(first)} button.claim")
    report["claimed_by"] = await browser.wait_for(
        f"(() => {{ const c = document.querySelector({json.dumps(card(first))});"
        " return c.dataset.claimedBy === document.body.dataset.name && c.querySelector('button.claim').hidden"
        " && c.querySelector('.claimed').textContent; })()",
        "the claim shown on the card",
    )
    report["claimed"] = first
    await browser.type_into(f"{card(approved)} textarea[name=note]", "Income confirmed with the employer.")
    await browser.click(f"{card(approved)} button.approve")
    await browser.wait_for(f"!document.querySelector({json.dumps(card(approved))})", "the approved loan leaving the queue")
    report["approved"] = approved

    await browser.click(f"{card(second)} button.ask")
    form = f"{card(second)} form.ask-form"
    await browser.type_into(f"{form} input[name=fields]", "payslip, employer")
    await browser.type_into(f"{form} textarea[name=message]", "Please send your latest payslip and your employer's name.")
    await browser.type_into(f"{form} input[name=due]", "2")
    await browser.click(f"{form} button.send-request")
    row = f'#awaiting tr[data-id="{second}"]'
    report["countdown"] = await browser.wait_for(
        f"(() => {{ const t = document.querySelector({json.dumps(row + ' .countdown')})?.textContent;"
        " return !!t && /\\d+d \\d+h|\\d+h \\d+m/.test(t) && t; })()",
        "the request among the loans awaiting applicants, counting down",
    )
    report["asked_fields"] = await browser.js(f"document.querySelector({json.dumps(row)}).children[1].textContent")
    due = await browser.js(f"document.querySelector({json.dumps(row)}).dataset.due")
    await browser.type_into(f"{row} input[name=extend-days]", "5")
    await browser.click(f"{row} button.extend")
    report["extended_due"] = await browser.wait_for(
        f"(() => {{ const r = document.querySelector({json.dumps(row)}); return !!r && r.dataset.due !== {json.dumps(due)}"
        " && r.dataset.due; })()",
        "the extended deadline",
    )
    report["first_due"] = due
    await browser.screenshot(screenshot)
    say({"asked": second})

    report["back_under_review"] = await browser.wait_for(
        f"!!(document.querySelector({json.dumps(card(second))}) && !document.querySelector({json.dumps(row)}))",
        "the answered loan back under review",
        timeout=60,
    )
    await browser.click(f"{card(second)} details.history summary")
    report["answers_shown"] = await browser.wait_for(
        f"document.querySelector({json.dumps(card(second) + ' li[data-type=InformationProvided]')})?.textContent",
        "the answers in the loan's history",
    )
    report["in_review_after"] = await browser.js("[...document.querySelectorAll('#review-queue li.card')].map(c => c.dataset.id)")
    report["reloaded"] = await browser.js("window.__sameDocument !== 'yes'")

    viewer = await browser.open_tab()
    await open_dashboard(viewer, base_url, viewer_token, "viewer")
    await viewer.click('nav.views button[data-view="queue"]')
    report["viewer_cards"] = await viewer.wait_for(
        "document.querySelectorAll('#review-queue li.card').length", "the queue, read-only"
    )
    report["viewer_buttons"] = await viewer.js("document.querySelectorAll('#view-queue button').length")


async def race(browser, base_url, first_token, second_token, report):
    await open_dashboard(browser, base_url, first_token, "underwriter")
    [loan_id] = await cards(browser, RACED, "the loan in the first tab")
    other = await browser.open_tab()
    await open_dashboard(other, base_url, second_token, "underwriter")
    await cards(other, RACED, "the loan in the second tab")

    # The first underwriter's decision leaves the browser only when the test lets it.
    await browser.call("Fetch.enable", patterns=[{"urlPattern": "*/decision", "requestStage": "Request"}])
    await browser.type_into(f"{card(loan_id)} textarea[name=note]", "Approve: first tab.")
    await browser.click(f"{card(loan_id)} button.approve")
    held = await browser.wait_paused("the first tab's decision, held")

    await other.type_into(f"{card(loan_id)} textarea[name=note]", "Approve: second tab.")
    await other.click(f"{card(loan_id)} button.approve")
    await other.wait_for(f"!document.querySelector({json.dumps(card(loan_id))})", "the second tab's approval")
    report["first_tab_saw_it_live"] = await browser.wait_for(
        f"!document.querySelector({json.dumps(card(loan_id))})", "the first tab learning of it live"
    )
    await browser.call("Fetch.continueRequest", requestId=held["requestId"])
    notice = f'#queue-notices li.conflict[data-loan-id="{loan_id}"]'
    report["conflict"] = await browser.wait_for(
        f"(() => {{ const n = document.querySelector({json.dumps(notice)});"
        " return !!n && {status: n.dataset.status, http: n.dataset.httpStatus, text: n.textContent}; })()",
        "the 409 and the loan's current state",
    )
    report["loan_id"] = loan_id
    report["second_tab_outcome_notices"] = await other.js("document.querySelectorAll('#queue-notices li').length")


def step_count(step):
    return f"document.querySelector('#process-diagram g.step[data-step=\"{step}\"]')?.dataset.count"


async def counts(browser):
    return await browser.js(
        "Object.fromEntries([...document.querySelectorAll('#process-diagram g.step')]"
        ".map(g => [g.dataset.step, Number(g.dataset.count)]))"
    )


async def process(browser, base_url, token, screenshot, report):
    await open_dashboard(browser, base_url, token, "operator")
    await browser.click('nav.views button[data-view="process"]')
    await browser.wait_for(
        "(() => { const c = document.querySelector('#process-diagram g.step[data-step=\"underwriter\"] .count');"
        " return !!c && c.textContent !== '–'; })()",
        "the process diagram with its counts",
    )
    before = await counts(browser)
    report["before"] = before
    say({"ready": True, "counts": before})

    risen = str(before["underwriter"] + RISE)
    await browser.wait_for(f"{step_count('underwriter')} === '{risen}'", "the underwriter count rising live")
    report["risen"] = await counts(browser)
    await browser.click('#process-diagram g.step[data-step="underwriter"]')
    listed = await browser.wait_for(
        f"(() => {{ const ids = [...document.querySelectorAll('#step-loans tbody tr')].map(r => r.dataset.id);"
        f" return ids.length === {risen} && ids; }})()",
        "the underwriter step's loans",
    )
    report["listed"] = listed
    report["oldest_age"] = await browser.wait_for(
        "document.querySelector('#process-diagram g.step[data-step=\"underwriter\"] .age').textContent", "the oldest's age"
    )
    await asyncio.sleep(2)  # the ages move on in the picture
    await browser.screenshot(screenshot)
    say({"listed": listed})

    await browser.wait_for(
        f"{step_count('underwriter')} === '{before['underwriter']}' && {step_count('applicant')} === '{before['applicant'] + 1}'",
        "the counts falling live as the loans are decided and one waits on its applicant",
    )
    report["after"] = await counts(browser)
    report["listed_after"] = await browser.wait_for(
        "document.querySelectorAll('#step-loans tbody tr').length === 0 && document.querySelector('#step-title').textContent",
        "the selected step's list, emptied",
    )
    report["reloaded"] = await browser.js("window.__sameDocument !== 'yes'")


def main():
    mode, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else (None, [])
    if mode == "queue" and len(args) == 4:
        base_url, token, viewer_token, screenshot = args
        report = asyncio.run(
            drive(lambda b, r: queue(b, base_url.rstrip("/"), token, viewer_token, screenshot, r), failure_screenshot=screenshot)
        )
    elif mode == "race" and len(args) == 3:
        base_url, first, second = args
        # The losing decision's 409 is what this checks; the browser logs every 4xx response.
        report = asyncio.run(drive(lambda b, r: race(b, base_url.rstrip("/"), first, second, r), expected_errors=("status of 409",)))
    elif mode == "process" and len(args) == 3:
        base_url, token, screenshot = args
        report = asyncio.run(drive(lambda b, r: process(b, base_url.rstrip("/"), token, screenshot, r), failure_screenshot=screenshot))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    say(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
