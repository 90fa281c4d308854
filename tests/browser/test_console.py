"""The console's journeys in a real browser (Chromium), on a local stack."""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def wait_for(browser: Any, condition: Any, timeout: float = 60) -> Any:
    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition)


def heading_status(browser: Any, status: str) -> Any:
    return ec.text_to_be_present_in_element((By.CSS_SELECTOR, "h1 .badge"), status)


def open_page(browser: Any, console: Console, hash_: str) -> None:
    """The page drawn afresh: going to the URL the browser is at (or one only its hash
    differs from) would keep the page drawn before, and a test would read it."""
    browser.get("about:blank")
    browser.get(f"{console.url}/{hash_}")


def confirm(browser: Any, label: str) -> str:
    """Press `label` in the confirmation dialog; the dialog's message."""
    dialog = wait_for(
        browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "dialog.confirm"))
    )
    message = str(dialog.find_element(By.TAG_NAME, "p").text)
    dialog.find_element(By.XPATH, f".//button[normalize-space()='{label}']").click()
    return message


def running_job_page(browser: Any, console: Console) -> dict[str, Any]:
    """A long job, RUNNING, its page open; the job."""
    params = {"kind": "long", "units": 120, "unit_seconds": 0.5}
    job: dict[str, Any] = console.stack.submit({"definition": "demo", "parameters": params})
    console.stack.wait(job["id"], {"RUNNING"})
    open_page(browser, console, f"#/jobs/{job['id']}")
    wait_for(browser, heading_status(browser, "RUNNING"))
    return job


def submit_form(browser: Any, console: Console, field: str, text: str) -> Any:
    """The submit form with one field filled in, submitted; that field's element."""
    open_page(browser, console, "#/submit")
    # The form is drawn and the stack answers (the definitions it offers are in) before typing.
    wait_for(browser, ec.text_to_be_present_in_element((By.ID, "definition-hint"), "known:"))
    element = wait_for(browser, ec.presence_of_element_located((By.ID, field)))
    element.clear()
    element.send_keys(text)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    return element


def test_a_job_submitted_from_the_form_is_followed_to_success(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN the submit form; WHEN a job is submitted from it
    submit_form(browser, console, "parameters", '{"kind": "succeed", "seconds": 0.5}')
    # THEN its page opens and follows it to SUCCEEDED, with its logs
    try:
        wait_for(browser, ec.url_contains("#/jobs/job-"))
    except TimeoutException:
        errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".error") if e.text]
        pytest.fail(f"the job's page never opened; the form says: {errors or 'nothing'}")
    wait_for(browser, heading_status(browser, "SUCCEEDED"))
    wait_for(
        browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "pre.logs"), "job finished")
    )


def test_a_failed_job_shows_its_reason_diagnosis_and_logs(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a job that failed (exit code 1: no rule retries it)
    job = console.stack.submit({"definition": "demo", "parameters": {"kind": "exit", "code": 1}})
    assert console.stack.wait(job["id"])["status"] == "FAILED"
    # WHEN its page is opened
    open_page(browser, console, f"#/jobs/{job['id']}")
    wait_for(browser, heading_status(browser, "FAILED"))
    # THEN the attempt's reason, what to do, and the worker's own log lines are there
    reason = browser.find_element(By.CSS_SELECTOR, ".attempt .reason").text
    assert "Essential container in task exited" in reason, reason
    diagnosis = browser.find_element(By.CSS_SELECTOR, ".attempt .diagnosis").text
    assert diagnosis.startswith("What to do:") and len(diagnosis) > 20, diagnosis
    wait_for(
        browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "pre.logs"), "job finished")
    )


def test_a_running_job_is_cancelled_from_its_page(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a long job, running
    job = running_job_page(browser, console)
    # WHEN Cancel is pressed, and confirmed
    button = browser.find_element(By.XPATH, "//button[normalize-space()='Cancel']")
    button.click()
    confirm(browser, "Cancel job")
    # THEN the page follows the job to CANCELLED
    wait_for(browser, heading_status(browser, "CANCELLED"))
    assert console.stack.job(job["id"])["status"] == "CANCELLED"


def test_the_list_filters_by_status(browser: Any, console: Console, shot: None) -> None:
    # GIVEN a failed and a succeeded job
    failed = console.stack.submit({"definition": "demo", "parameters": {"kind": "exit", "code": 1}})
    ok = console.stack.submit(
        {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    )
    console.stack.wait(failed["id"])
    console.stack.wait(ok["id"])
    open_page(browser, console, "#/jobs")
    select = wait_for(browser, ec.presence_of_element_located((By.ID, "f-status")))
    # WHEN the list is filtered to FAILED
    Select(select).select_by_value("FAILED")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(browser, ec.url_contains("status=FAILED"))

    def statuses(_: Any) -> set[str]:
        # Read in one script: the list redraws itself, so elements go stale between calls.
        script = "return [...document.querySelectorAll('tbody .badge')].map(b => b.textContent)"
        return set(browser.execute_script(script))

    # THEN, once the list is redrawn, only failed jobs are listed, the failed one among them
    try:
        wait_for(browser, lambda b: statuses(b) == {"FAILED"}, timeout=20)
    except TimeoutException:
        pytest.fail(f"the list still shows {statuses(browser)}")
    assert browser.find_elements(By.LINK_TEXT, failed["id"]), "the failed job is listed"
    assert not browser.find_elements(By.LINK_TEXT, ok["id"]), "the succeeded job is filtered out"


def test_an_invalid_form_shows_the_apis_error_next_to_the_field(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN the submit form; WHEN it is submitted with a definition that does not exist
    definition = submit_form(browser, console, "definition", "nope")
    # THEN the API's message appears under that field, which is marked invalid
    wait_for(
        browser,
        ec.text_to_be_present_in_element((By.ID, "definition-error"), "unknown job definition"),
    )
    assert definition.get_attribute("aria-invalid") == "true"
    assert browser.current_url.endswith("#/submit"), "nothing was created"


def test_the_submit_form_offers_the_deployments_job_definitions(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a deployment with the demo definitions; WHEN the submit form opens
    open_page(browser, console, "#/submit")
    # THEN the definition field offers each by name, and its hint says what each one is
    wait_for(browser, ec.text_to_be_present_in_element((By.ID, "definition-hint"), "demo-limited"))
    options = browser.find_elements(By.CSS_SELECTOR, "datalist#definitions option")
    assert [o.get_attribute("value") for o in options] == ["demo", "demo-limited"], options
    field = browser.find_element(By.ID, "definition")
    assert field.get_attribute("list") == "definitions", "the field is not tied to the list"
    hint = browser.find_element(By.ID, "definition-hint").text
    assert "at most 2 at once" in hint, hint


def test_the_console_api_refuses_a_browser_without_the_links_key(console: Console) -> None:
    import urllib.error
    import urllib.request

    # GIVEN no cookie from the printed link; WHEN the console's API is called
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{console.url}/api/jobs", timeout=10)
    # THEN it is refused
    assert info.value.code == 403


def test_the_overview_shows_the_jobs_past_a_running_limit_as_the_launch_queue(
    browser: Any, console: Console, shot: None
) -> None:
    stack = console.stack
    # GIVEN demo-limited (2 at once) with 4 long jobs: 2 run, 2 wait for a slot
    slow = {"definition": "demo-limited", "parameters": {"kind": "succeed", "seconds": 20}}
    limited = [stack.submit(slow) for _ in range(4)]
    try:
        # WHEN the overview is opened
        open_page(browser, console, "#/overview")
        wait_for(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#launch-queue")))
        queue = str(
            browser.execute_script(
                "return document.querySelector('#launch-queue desc').textContent"
            )
        )
        # THEN the queue picture names the two waiting jobs and why they wait
        waiting = [j["id"] for j in limited if j["id"] in queue]
        assert len(waiting) == 2, queue
        assert "running limit 2" in queue, queue
    finally:  # the next test starts from settled jobs, not from these changing under it
        for job in limited:
            stack.request("POST", f"/jobs/{job['id']}/cancel", {})
        for job in limited:
            stack.wait(job["id"])


def test_a_jobs_page_shows_its_task_links_settings_and_ecs_history(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a finished job with environment, tags and a timeout
    job = console.stack.submit(
        {
            "definition": "demo",
            "parameters": {"kind": "succeed", "seconds": 0},
            "environment": {"MODE": "fast"},
            "tags": {"team": "data"},
            "timeout_seconds": 600,
        }
    )
    done = console.stack.wait(job["id"])
    # (its task's RUNNING event may be recorded after its STOPPED: the history is complete
    # once both are in)
    for _ in range(100):
        if {"RUNNING", "STOPPED"} <= {h["status"] for h in done["attempts"][0]["history"]}:
            break
        time.sleep(0.1)
        done = console.stack.job(job["id"])
    attempt = done["attempts"][0]
    # WHEN its page is opened
    open_page(browser, console, f"#/jobs/{job['id']}")
    wait_for(browser, heading_status(browser, "SUCCEEDED"))
    # THEN it shows the task's ARN with its ECS and CloudWatch links, the job's settings and
    # the attempt's ECS state history
    arn = browser.find_element(By.CSS_SELECTOR, ".attempt .task-arn").text
    assert arn == attempt["task_arn"], arn
    ecs = browser.find_element(By.CSS_SELECTOR, ".attempt a.ecs-link").get_attribute("href")
    assert ecs == attempt["task_url"], ecs
    logs = browser.find_element(By.CSS_SELECTOR, ".attempt a.logs-link").get_attribute("href")
    assert logs == attempt["logs"]["console_url"], logs
    assert browser.find_element(By.CSS_SELECTOR, "dd.environment").text == "MODE=fast"
    assert browser.find_element(By.CSS_SELECTOR, "dd.tags").text == "team=data"
    assert browser.find_element(By.CSS_SELECTOR, "dd.timeouts").text.startswith("run 10.0 min")
    history = browser.find_element(By.CSS_SELECTOR, ".attempt details.history")
    history.find_element(By.TAG_NAME, "summary").click()
    statuses = [td.text for td in history.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2)")]
    assert statuses == [h["status"] for h in attempt["history"]], statuses
    assert "STOPPED" in statuses, statuses


def test_cancel_asks_first_and_keep_leaves_the_job_running(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a long job, running, on its page
    job = running_job_page(browser, console)
    # WHEN Cancel is pressed and the confirmation answered "Keep"
    browser.find_element(By.XPATH, "//button[normalize-space()='Cancel']").click()
    message = confirm(browser, "Keep")
    # THEN the dialog said what would happen, and the job was left running
    assert job["id"] in message and "SIGTERM" in message, message
    assert console.stack.job(job["id"])["status"] == "RUNNING"
    console.stack.request("POST", f"/jobs/{job['id']}/cancel")  # tidy up


def test_rerun_asks_first_then_submits_the_same_job_again(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a finished job with tags and a timeout, on its page
    body = {
        "definition": "demo",
        "parameters": {"kind": "succeed", "seconds": 0},
        "tags": {"team": "data"},
        "timeout_seconds": 600,
    }
    job = console.stack.submit(body)
    console.stack.wait(job["id"])
    open_page(browser, console, f"#/jobs/{job['id']}")
    wait_for(browser, heading_status(browser, "SUCCEEDED"))
    # WHEN Rerun is pressed and confirmed
    browser.find_element(By.XPATH, "//button[normalize-space()='Rerun']").click()
    confirm(browser, "Rerun")
    # THEN the console moved to a new job with the same submission
    wait_for(browser, lambda b: job["id"] not in b.current_url and "#/jobs/job-" in b.current_url)
    new_id = browser.current_url.rsplit("/", 1)[-1]
    again = console.stack.job(new_id)
    same = {k: again[k] for k in body}
    assert same == body, same


def row_of(browser: Any, job_id: str) -> Any:
    return wait_for(
        browser,
        ec.presence_of_element_located(
            (By.XPATH, f"//table[@aria-label='Jobs']//tr[td/a[normalize-space()='{job_id}']]")
        ),
    )


def test_the_list_shows_each_jobs_times_duration_and_reason(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a job that failed (exit 1)
    job = console.stack.submit({"definition": "demo", "parameters": {"kind": "exit", "code": 1}})
    done = console.stack.wait(job["id"])
    # WHEN the list is opened
    open_page(browser, console, "#/jobs")
    row = row_of(browser, job["id"])
    # THEN its row shows when it started and finished, how long it ran, and why it failed
    started = done["attempts"][-1]["started_at"]
    assert row.find_element(By.CSS_SELECTOR, "td.started").text == started[11:19]
    assert row.find_element(By.CSS_SELECTOR, "td.finished").text == done["finished_at"][11:19]
    assert row.find_element(By.CSS_SELECTOR, "td.duration").text.endswith(" s")
    reason = row.find_element(By.CSS_SELECTOR, ".reason").text
    assert reason == done["status_reason"] and reason, reason


def test_selected_jobs_are_cancelled_together_after_one_confirmation(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN three long jobs, running, in the list
    params = {"kind": "long", "units": 120, "unit_seconds": 0.5}
    jobs = [console.stack.submit({"definition": "demo", "parameters": params}) for _ in range(3)]
    for job in jobs:
        console.stack.wait(job["id"], {"RUNNING"})
    open_page(browser, console, "#/jobs")
    # WHEN the three are selected and "Cancel selected" confirmed
    for job in jobs:
        row_of(browser, job["id"]).find_element(By.CSS_SELECTOR, "input.pick").click()
    button = browser.find_element(By.CSS_SELECTOR, "button.bulk-cancel")
    assert button.text == "Cancel selected (3)", button.text
    button.click()
    message = confirm(browser, "Cancel 3 jobs")
    # THEN the dialog said how many, and every one of them ends CANCELLED
    assert message.startswith("Cancel 3 jobs?"), message
    finals = [console.stack.wait(job["id"])["status"] for job in jobs]
    assert finals == ["CANCELLED"] * 3, finals


def test_the_list_filters_by_tag(browser: Any, console: Console, shot: None) -> None:
    # GIVEN a job tagged team=billing and one without the tag
    tagged = console.stack.submit(
        {
            "definition": "demo",
            "parameters": {"kind": "succeed", "seconds": 0},
            "tags": {"team": "billing"},
        }
    )
    other = console.stack.submit({"definition": "demo", "parameters": {"kind": "succeed"}})
    open_page(browser, console, "#/jobs")
    field = wait_for(browser, ec.presence_of_element_located((By.ID, "f-tag")))
    # WHEN the list is filtered to team=billing
    field.send_keys("team=billing")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(browser, ec.url_contains("tag=team%3Dbilling"))

    # THEN, once the list is redrawn, the tagged job is listed and the other is not
    def filtered(b: Any) -> bool:
        script = "return [...document.querySelectorAll('tbody a')].map(a => a.textContent)"
        listed = set(b.execute_script(script))
        return tagged["id"] in listed and other["id"] not in listed

    try:
        wait_for(browser, filtered, timeout=20)
    except TimeoutException:
        pytest.fail("the list did not come to show the tagged job without the other")


def test_an_arrays_page_draws_its_summary_and_pages_its_children(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN an array of 30 quick children, 10 at once, that has finished
    body = {
        "definition": "demo",
        "parameters": {"kind": "succeed", "seconds": 0},
        "array": {"size": 30, "max_running": 10},
    }
    parent = console.stack.submit(body)
    assert console.stack.wait(parent["id"], timeout=180)["status"] == "SUCCEEDED"
    # WHEN its page is opened
    open_page(browser, console, f"#/jobs/{parent['id']}")
    wait_for(browser, heading_status(browser, "SUCCEEDED"))
    # THEN its summary is drawn as a bar per status, the SUCCEEDED one counting all 30
    bars = {
        b.get_attribute("data-status"): b.get_attribute("data-count")
        for b in browser.find_elements(By.CSS_SELECTOR, "#array-summary rect.bar")
    }
    assert bars["SUCCEEDED"] == "30" and bars["PENDING"] == "0", bars
    assert "at most 10 at once" in browser.find_element(By.CSS_SELECTOR, ".array-spec").text
    # AND its children are listed in index order, a page of 25 and a link to the rest
    indexes = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "td.index")]
    assert indexes == [str(i) for i in range(25)], indexes
    browser.find_element(By.CSS_SELECTOR, "a.more-children").click()
    wait_for(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "td.index"), "25"))
    indexes = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "td.index")]
    assert indexes == [str(i) for i in range(25, 30)], indexes
    # WHEN a child is opened THEN its page leads back to its parent
    browser.find_element(By.CSS_SELECTOR, "tbody a").click()
    wait_for(browser, ec.url_contains(f"#/jobs/{parent['id']}-25"))
    back = wait_for(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "dd.parent a")))
    assert "index 25 of" in browser.find_element(By.CSS_SELECTOR, "dd.parent").text
    back.click()
    wait_for(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#array-summary")))


def test_an_arrays_bar_leads_to_its_failed_children_and_retry_runs_them_again(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN an array of 4 whose children fail their first attempt (no retry by rule), 3
    # tolerated: the 4th failure fails the parent
    body = {
        "definition": "demo",
        "parameters": {"kind": "flaky", "fail_attempts": 1, "seconds": 0},
        "retry": {"max_attempts": 1},
        "array": {"size": 4, "tolerated_failures": 3},
    }
    parent = console.stack.submit(body)
    assert console.stack.wait(parent["id"], timeout=120)["status"] == "FAILED"
    open_page(browser, console, f"#/jobs/{parent['id']}")
    wait_for(browser, heading_status(browser, "FAILED"))
    # WHEN its FAILED bar is clicked
    browser.find_element(By.CSS_SELECTOR, "#array-summary a[href$='status=FAILED']").click()
    # THEN only its FAILED children are listed
    wait_for(browser, ec.text_to_be_present_in_element((By.TAG_NAME, "main"), "Showing FAILED"))
    statuses = {b.text for b in browser.find_elements(By.CSS_SELECTOR, "tbody .badge")}
    assert statuses == {"FAILED"}, statuses
    assert len(browser.find_elements(By.CSS_SELECTOR, "td.index")) == 4
    # WHEN "Retry failed children" is confirmed
    browser.find_element(By.CSS_SELECTOR, "button.retry-failed").click()
    assert "again" in confirm(browser, "Retry failed")
    # THEN (once the request is through: the click does not wait for it) the children run
    # their second attempt and the parent SUCCEEDED, on the page too
    wait_for(browser, lambda _: console.stack.job(parent["id"])["status"] != "FAILED")
    assert console.stack.wait(parent["id"], timeout=120)["status"] == "SUCCEEDED"
    open_page(browser, console, f"#/jobs/{parent['id']}")
    wait_for(browser, heading_status(browser, "SUCCEEDED"))
    attempts = [r.find_elements(By.TAG_NAME, "td")[3].text for r in table_rows(browser)]
    assert attempts == ["2"] * 4, attempts


def table_rows(browser: Any) -> list[Any]:
    return list(browser.find_elements(By.CSS_SELECTOR, "table[aria-label=Children] tbody tr"))


def test_a_waiting_jobs_page_links_what_it_waits_on_and_is_released_when_that_ends(
    browser: Any, console: Console, shot: None
) -> None:
    # GIVEN a running job and a job to run after it succeeds
    first = running_job_page(browser, console)
    body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    waiting = console.stack.submit({**body, "depends_on": [{"job_id": first["id"]}]})
    # WHEN the waiting job's page is opened
    open_page(browser, console, f"#/jobs/{waiting['id']}")
    wait_for(browser, heading_status(browser, "WAITING"))
    # THEN it names what it waits on, as a link, not met yet
    row = browser.find_element(By.CSS_SELECTOR, "table.depends-on tbody tr")
    assert row.find_element(By.CSS_SELECTOR, "td.met").text == "waiting", row.text
    assert f"waiting for {first['id']} to succeed" in browser.find_element(By.TAG_NAME, "main").text
    # WHEN the link is followed THEN the first job's page lists the waiting one as a dependent
    row.find_element(By.TAG_NAME, "a").click()
    wait_for(browser, ec.url_contains(f"#/jobs/{first['id']}"))
    dependent = wait_for(
        browser, ec.presence_of_element_located((By.CSS_SELECTOR, "ul.dependents a"))
    )
    assert dependent.text == waiting["id"], dependent.text
    # WHEN the first job is cancelled (its dependent needed it to succeed)
    browser.find_element(By.XPATH, "//button[normalize-space()='Cancel']").click()
    confirm(browser, "Cancel job")
    # THEN the dependent ends CANCELLED for that reason, never launched, on its page too
    ended = console.stack.wait(waiting["id"], timeout=60)
    assert ended["status"] == "CANCELLED" and ended["attempts"][0]["task_arn"] is None, ended
    open_page(browser, console, f"#/jobs/{waiting['id']}")
    wait_for(browser, heading_status(browser, "CANCELLED"))
    assert (
        f"dependency {first['id']} ended CANCELLED"
        in browser.find_element(By.CSS_SELECTOR, ".status-reason").text
    )
    assert browser.find_element(By.CSS_SELECTOR, "table.depends-on td.met").text == "never met"
