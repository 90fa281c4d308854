"""The console's Schedules and Overview pages, and every page at a phone's width, in Chromium
on a local stack."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from tests.browser.conftest import Console, save_shot
from tests.browser.test_console import confirm, open_page, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

DEMO = "demo-every-10-minutes"  # the demo schedule's name in its tick (template.yaml)
PHONE = (390, 844)


def card(browser: Any) -> Any:
    return wait_for(
        browser, ec.presence_of_element_located((By.CSS_SELECTOR, f"[data-schedule='{DEMO}']"))
    )


def demo_schedule(console: Console) -> dict[str, Any]:
    status, page = console.stack.request("GET", "/schedules")
    assert status == 200, page
    return next(s for s in page["schedules"] if s["name"] == DEMO)


def run_now(console: Console) -> str:
    """Run the demo schedule now (POST /schedules/NAME/run); the job it made. Its overlap policy
    is Forbid: a run while an earlier one is active is refused (409), so wait that run out."""
    for _ in range(15):
        status, answer = console.stack.request("POST", f"/schedules/{DEMO}/run")
        if status in (200, 201):
            return str(answer["id"])
        assert status == 409, answer
        time.sleep(2)
    pytest.fail(f"every run was refused: {answer}")


def test_the_schedules_page_shows_the_demo_schedules_expression_overlap_and_next_tick(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN the stack's demo schedule (cron every 10 minutes, overlap Forbid)
    # WHEN the Schedules page is opened
    open_page(browser, console, "#/schedules")
    demo = card(browser)
    # THEN its card shows the expression, the overlap policy and a next tick on the 10 minutes
    expression = demo.find_element(By.CSS_SELECTOR, ".expression").text
    assert expression == "cron(0/10 * * * ? *) UTC", expression
    assert demo.find_element(By.CSS_SELECTOR, ".overlap").text.startswith("Forbid")
    next_tick = demo.find_element(By.CSS_SELECTOR, ".next-tick time").get_attribute("datetime")
    assert next_tick is not None and next_tick[14:16] in {"00", "10", "20", "30", "40", "50"}
    assert next_tick == demo_schedule(console)["next_tick"]


def test_a_tick_of_the_demo_schedule_is_listed_with_its_status(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN the demo schedule ran (now, through the API) and its run finished
    job_id = run_now(console)
    assert console.stack.wait(job_id)["status"] == "SUCCEEDED"
    # WHEN the Schedules page is opened
    open_page(browser, console, "#/schedules")
    # THEN the run is among the schedule's last runs, with its status
    run = wait_for(
        browser,
        ec.presence_of_element_located(
            (By.XPATH, f"//*[@data-schedule='{DEMO}']//ol/li[a[normalize-space()='{job_id}']]")
        ),
        timeout=20,  # the page follows its schedules every 10 s
    )
    assert run.find_element(By.CSS_SELECTOR, ".badge").text == "SUCCEEDED"


def test_an_operator_pauses_and_resumes_a_schedule_each_after_a_confirmation(
    browser: Any, console: Console
) -> None:
    # GIVEN the demo schedule, active, on the Schedules page
    assert demo_schedule(console)["state"] == "ENABLED"
    open_page(browser, console, "#/schedules")
    try:
        # WHEN Pause is pressed and confirmed
        card(browser).find_element(By.CSS_SELECTOR, "button.pause").click()
        message = confirm(browser, "Pause")
        # THEN the dialog said what pausing does, the card shows it paused with no next tick,
        # and EventBridge Scheduler holds it DISABLED
        assert "No tick fires until it is resumed" in message, message
        resume = wait_for(
            browser,
            ec.element_to_be_clickable((By.CSS_SELECTOR, f"[data-schedule='{DEMO}'] .resume")),
        )
        demo = card(browser)
        assert demo.find_element(By.CSS_SELECTOR, "h2 .badge").text == "PAUSED"
        assert "paused" in demo.find_element(By.CSS_SELECTOR, ".next-tick").text
        assert demo_schedule(console)["state"] == "DISABLED"
        save_shot(browser, "schedules-paused")
        # AND WHEN Resume is pressed and confirmed THEN it is active again, with a next tick
        resume.click()
        assert "missed while paused are not run" in confirm(browser, "Resume")
        wait_for(
            browser,
            ec.presence_of_element_located((By.CSS_SELECTOR, f"[data-schedule='{DEMO}'] .pause")),
        )
        assert demo_schedule(console)["state"] == "ENABLED"
        assert card(browser).find_element(By.CSS_SELECTOR, ".next-tick time")
    finally:
        console.stack.request("POST", f"/schedules/{DEMO}/resume")  # the other journeys' state


def test_run_now_after_a_confirmation_opens_the_job_the_schedule_made(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN no run of the demo schedule is active (its overlap policy is Forbid)
    for run in demo_schedule(console)["last_runs"]:
        console.stack.wait(run["id"])
    open_page(browser, console, "#/schedules")
    # WHEN Run now is pressed and confirmed
    card(browser).find_element(By.CSS_SELECTOR, "button.run-now").click()
    message = confirm(browser, "Run now")
    # THEN the dialog named the definition and the overlap policy, and the console opens the
    # new job: the schedule's, made this second, which runs to its end
    assert "starts a demo job" in message and "overlap Forbid" in message, message
    wait_for(browser, lambda b: "#/jobs/job-s" in b.current_url)
    job_id = browser.current_url.rsplit("/", 1)[1]
    job = console.stack.wait(job_id)
    assert job["schedule"] == DEMO and job["status"] == "SUCCEEDED", job
    wait_for(browser, ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), job_id))


def drawn_counts(browser: Any) -> dict[str, int]:
    script = """return [...document.querySelectorAll('#jobs-by-status rect[data-status]')]
      .map(r => [r.dataset.status, Number(r.dataset.count)])"""
    counts: Counter[str] = Counter()
    for status, n in browser.execute_script(script):
        counts[status] += n
    return dict(counts)


def test_the_overview_draws_the_jobs_submitted_by_status(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN two jobs that succeed and one that fails, on top of what ran before
    _, before = console.stack.request("GET", "/stats")
    ok = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    jobs = [console.stack.submit(ok) for _ in range(2)]
    jobs.append(
        console.stack.submit({"definition": "demo", "parameters": {"kind": "exit", "code": 1}})
    )
    assert [console.stack.wait(j["id"])["status"] for j in jobs] == ["SUCCEEDED"] * 2 + ["FAILED"]
    # WHEN the Overview page is opened
    open_page(browser, console, "#/overview")
    wait_for(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#jobs-by-status rect")))
    # THEN its bars add up to the API's counts, which grew by what was submitted
    drawn = drawn_counts(browser)
    _, now = console.stack.request("GET", "/stats")
    assert drawn == now["totals"], (drawn, now["totals"])
    grew = Counter(now["totals"]) - Counter(before["totals"])
    assert grew["FAILED"] == 1 and grew["SUCCEEDED"] >= 2, grew
    # AND each picture has its text alternative: the counts, the demo's rate, the queue
    described = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('svg.chart')]"
        ".map(s => [s.id, s.querySelector('desc').textContent]))"
    )
    assert f"{drawn['FAILED']} FAILED" in described["jobs-by-status"], described
    assert "demo:" in described["success-rate"] and "p95" in described["durations"]
    assert "launch-queue" in described
    for chart in browser.find_elements(By.CSS_SELECTOR, "svg.chart"):
        assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-labelledby")


def test_the_console_lands_on_the_overview_with_its_running_and_waiting_counts(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a long job running now
    params = {"kind": "long", "units": 120, "unit_seconds": 0.5}
    job = console.stack.submit({"definition": "demo", "parameters": params})
    console.stack.wait(job["id"], {"RUNNING"})
    # WHEN the console is opened at its bare address
    open_page(browser, console, "")
    count = wait_for(
        browser,
        ec.presence_of_element_located((By.CSS_SELECTOR, "ul.now li[data-status=RUNNING]")),
    )
    # THEN it is the Overview, its "running now" is the API's count, and leads to those jobs
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    _, stats = console.stack.request("GET", "/stats")
    shown = int(count.find_element(By.CSS_SELECTOR, ".count").text.rstrip("+"))
    assert shown == stats["now"]["RUNNING"] >= 1, (shown, stats["now"])
    count.find_element(By.TAG_NAME, "a").click()
    wait_for(browser, ec.url_contains("#/jobs?status=RUNNING"))
    assert browser.find_elements(By.LINK_TEXT, job["id"]) or wait_for(
        browser, ec.presence_of_element_located((By.LINK_TEXT, job["id"]))
    )
    console.stack.request("POST", f"/jobs/{job['id']}/cancel")  # tidy up


def test_the_overviews_bars_lead_to_the_jobs_they_count_and_durations_say_p50_p95(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a job that failed
    job = console.stack.submit({"definition": "demo", "parameters": {"kind": "exit", "code": 1}})
    console.stack.wait(job["id"])
    open_page(browser, console, "#/overview")
    wait_for(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#durations .value")))
    # THEN the durations are labelled p50 and p95
    value = browser.find_element(By.CSS_SELECTOR, "#durations .value").text
    assert value.startswith("p50 ") and " p95 " in value, value
    # AND WHEN a FAILED bar is followed, the list shows the failed jobs
    bar = browser.find_element(By.CSS_SELECTOR, "#jobs-by-status a.bar-link rect.FAILED")
    href = bar.find_element(By.XPATH, "..").get_dom_attribute("href")
    assert href == "#/jobs?status=FAILED", href
    browser.execute_script(
        "arguments[0].parentNode.dispatchEvent(new MouseEvent('click', {bubbles: true}))", bar
    )
    wait_for(browser, ec.url_contains("#/jobs?status=FAILED"))
    wait_for(browser, ec.presence_of_element_located((By.LINK_TEXT, job["id"])))


@pytest.fixture
def phone(browser: Any) -> Iterator[None]:
    """The browser at a phone's size for one test, then back at the desktop's."""
    size = browser.get_window_size()
    browser.set_window_size(*PHONE)
    yield
    browser.set_window_size(size["width"], size["height"])


def test_every_page_fits_a_phones_width_and_its_navigation_works(
    browser: Any, console: Console, phone: None, shot: None
) -> None:
    # GIVEN a phone-sized window and a job to look at
    job = console.stack.submit({"definition": "demo", "parameters": {"kind": "exit", "code": 1}})
    console.stack.wait(job["id"])
    pages = {  # each page, and its heading once drawn
        "overview": ("#/overview", "Overview"),
        "jobs": ("#/jobs", "Jobs"),
        "schedules": ("#/schedules", "Schedules"),
        "submit": ("#/submit", "Submit a job"),
        "job": (f"#/jobs/{job['id']}", job["id"]),
    }
    for name, (hash_, heading) in pages.items():
        # WHEN each page is opened
        open_page(browser, console, hash_)
        wait_for(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "main h1"), heading))
        # THEN nothing is wider than the screen (no sideways scrolling)
        width, inner = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        save_shot(browser, f"phone-{name}")
        assert inner <= PHONE[0] and width <= inner, f"{name}: {width} px wide in {inner}"
    # AND every navigation link is on screen, and one tap opens its page
    for link in browser.find_elements(By.CSS_SELECTOR, "nav a"):
        right = browser.execute_script("return arguments[0].getBoundingClientRect().right", link)
        assert link.is_displayed() and right <= inner, link.text
    browser.find_element(By.LINK_TEXT, "Schedules").click()
    wait_for(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "main h1"), "Schedules"))
    current = browser.find_element(By.CSS_SELECTOR, "nav a[aria-current='page']")
    assert current.text == "Schedules"
