"""The CRM web UI in headless Chromium (Debian's chromium + chromedriver, driven by Selenium)."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from sre_workshop.settings import TABLE_NAMES

from conftest import dynamodb, http, scan_all

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def crm(moto, start_app):
    return start_app("crm_app", moto.url)


def navigate(browser, action) -> None:
    """Run `action` (a click or a submit) and wait until the next page has loaded.

    The current window gets a mark that a new document does not have. While the old document goes away,
    chromedriver can answer with errors such as "Node with given id does not belong to the document":
    those are retried, so only a page that never arrives fails the wait.
    """
    browser.execute_script("window.__leaving = true")
    action()
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script("return !window.__leaving && document.readyState === 'complete'"))


def fill(browser, values: dict[str, str]) -> None:
    for name, value in values.items():
        element = browser.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    navigate(browser, browser.find_element(By.ID, "save").click)


def test_create_customer_then_deal_and_activity(browser, crm):
    browser.get(crm.url + "/")
    assert browser.find_element(By.ID, "tab-customers").get_attribute("class") == "active"
    navigate(browser, browser.find_element(By.ID, "new-customer").click)
    fill(browser, {"name": "Grace Hopper", "company": "Navy", "email": "grace@example.com",
                   "phone": "+1 555 010 2030", "status": "prospect"})
    assert browser.find_element(By.ID, "customer-name").text == "Grace Hopper"
    assert "Customer saved." in browser.page_source

    navigate(browser, browser.find_element(By.ID, "new-deal").click)
    fill(browser, {"title": "Compiler licence", "amount": "4200.50", "stage": "negotiation"})
    assert "Compiler licence" in browser.find_element(By.ID, "deals").text
    assert "4,200.50" in browser.find_element(By.ID, "deals").text

    navigate(browser, browser.find_element(By.ID, "new-activity").click)
    fill(browser, {"type": "meeting", "subject": "Kick-off", "note": "Bring the nanosecond wire"})
    assert "Kick-off" in browser.find_element(By.ID, "activities").text

    navigate(browser, browser.find_element(By.ID, "edit-customer").click)
    fill(browser, {"name": "Rear Admiral Grace Hopper"})
    assert browser.find_element(By.ID, "customer-name").text == "Rear Admiral Grace Hopper"

    navigate(browser, browser.find_element(By.ID, "tab-deals").click)
    stage = browser.find_element(By.CSS_SELECTOR, '[data-stage="negotiation"]')
    assert "Compiler licence" in stage.text
    assert "for the deals on this page" in browser.find_element(By.ID, "pipeline-scope").text


def test_invalid_form_is_shown_again_with_messages(browser, crm):
    browser.get(crm.url + "/customers/new")
    fill(browser, {"name": "Alan Turing", "email": "not-an-email", "phone": "call me"})
    assert browser.find_element(By.ID, "form-errors").is_displayed()
    fields = {e.get_attribute("data-field") for e in browser.find_elements(By.CSS_SELECTOR, "p.error[data-field]")}
    assert fields == {"email", "phone"}
    assert browser.find_element(By.NAME, "name").get_attribute("value") == "Alan Turing"


def test_search_and_paging(browser, crm):
    for n in range(30):
        http("POST", crm.url + "/api/customers", {"name": f"Pagewalker {n:02d}", "email": f"p{n}@example.com"})
    browser.get(crm.url + "/customers?q=pagewalker")
    names = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#customers td a")}
    while browser.find_elements(By.ID, "next-page"):
        navigate(browser, browser.find_element(By.ID, "next-page").click)
        names |= {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#customers td a")}
    assert {f"Pagewalker {n:02d}" for n in range(30)} <= names
    assert all(n.startswith("Pagewalker") for n in names)


def test_stored_script_is_shown_as_text_not_run(browser, crm):
    created = http("POST", crm.url + "/api/customers", {"name": XSS, "company": XSS, "email": "x@example.com"}).json()
    cid = created["customer_id"]
    http("POST", crm.url + "/api/activities", {"customer_id": cid, "type": "note", "subject": XSS, "note": XSS})
    http("POST", crm.url + "/api/deals", {"customer_id": cid, "title": XSS, "amount": 1})
    for path in (f"/customers/{cid}", "/customers?q=%3Cscript", "/deals"):
        browser.get(crm.url + path)
        assert browser.execute_script("return window.__xss") is None, path
    browser.get(crm.url + f"/customers/{cid}")
    assert browser.find_element(By.ID, "customer-name").text == XSS


def form_session(url: str):
    """Fetch a form with a cookie jar; return (opener, fields of the form)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(url) as response:
        page = response.read().decode()
    fields = dict(re.findall(r'name="(csrf|form_token)" value="([^"]+)"', page))
    return opener, fields


def post_form(opener, url: str, data: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), method="POST")
    try:
        with opener.open(request) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_submitting_the_same_form_twice_creates_one_customer(crm):
    opener, fields = form_session(crm.url + "/customers/new")
    data = {**fields, "name": "Double Clicker", "email": "dc@example.com", "status": "lead"}
    assert post_form(opener, crm.url + "/customers/new", data) == 200  # redirected to the customer page
    assert post_form(opener, crm.url + "/customers/new", data) == 200
    client = dynamodb(crm.spec.env["AWS_ENDPOINT_URL"])
    matches = [i for i in scan_all(client, TABLE_NAMES["CUSTOMERS_TABLE"]) if i["name"]["S"] == "Double Clicker"]
    assert len(matches) == 1


def test_a_form_post_without_the_csrf_token_is_refused(crm):
    opener, fields = form_session(crm.url + "/customers/new")
    data = {"form_token": fields["form_token"], "name": "Forged", "email": "f@example.com"}
    assert post_form(opener, crm.url + "/customers/new", data) == 400
    assert post_form(opener, crm.url + "/customers/new", {**data, "csrf": "guess"}) == 400


def test_unknown_customer_page_is_404(crm):
    assert http("GET", crm.url + "/customers/cust-0000beef").status == 404


def test_deleting_a_customer_from_its_page_removes_it_with_its_deals(browser, crm):
    cid = http("POST", crm.url + "/api/customers", {"name": "Short Lived", "email": "sl@example.com"}).json()[
        "customer_id"]
    http("POST", crm.url + "/api/deals", {"customer_id": cid, "title": "Gone too", "amount": 3})
    browser.get(crm.url + f"/customers/{cid}")
    form = browser.find_element(By.CSS_SELECTOR, "form[action$='/delete']")
    navigate(browser, lambda: browser.execute_script("arguments[0].onsubmit = null; arguments[0].submit();", form))
    assert browser.find_element(By.ID, "tab-customers").get_attribute("class") == "active"
    assert http("GET", crm.url + f"/api/customers/{cid}").status == 404
    deals = scan_all(dynamodb(crm.spec.env["AWS_ENDPOINT_URL"]), TABLE_NAMES["DEALS_TABLE"])
    assert not [d for d in deals if d["customer_id"]["S"] == cid]


def test_pages_break_no_rule_of_their_content_security_policy(browser, crm):
    cid = http("POST", crm.url + "/api/customers", {"name": "Policy Holder", "email": "ph@example.com"}).json()[
        "customer_id"]
    browser.get_log("browser")  # forget what earlier tests logged
    for path in ("/customers", f"/customers/{cid}", "/customers/new", f"/customers/{cid}/edit",
                 f"/customers/{cid}/deals/new", f"/customers/{cid}/activities/new", "/deals"):
        browser.get(crm.url + path)
    violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert violations == []


def test_delete_asks_first_through_the_crms_own_script(browser, crm):
    cid = http("POST", crm.url + "/api/customers", {"name": "Almost Gone", "email": "ag@example.com"}).json()[
        "customer_id"]
    browser.get(crm.url + f"/customers/{cid}")
    browser.find_element(By.CSS_SELECTOR, "form[data-confirm] button").click()
    alert = WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
    assert "Delete this customer" in alert.text
    alert.dismiss()
    assert http("GET", crm.url + f"/api/customers/{cid}").status == 200

    def click_and_accept():
        browser.find_element(By.CSS_SELECTOR, "form[data-confirm] button").click()
        WebDriverWait(browser, 5).until(expected_conditions.alert_is_present()).accept()

    navigate(browser, click_and_accept)
    assert http("GET", crm.url + f"/api/customers/{cid}").status == 404


def test_the_crm_cannot_be_framed_by_another_site(browser, crm, tmp_path):
    page = tmp_path / "framing.html"
    page.write_text(f'<iframe id="f" src="{crm.url}/customers"></iframe>')
    browser.get_log("browser")
    browser.get(page.as_uri())
    WebDriverWait(browser, 10).until(lambda driver: any(
        "frame" in e["message"] and ("Refused" in e["message"] or "blocked" in e["message"])
        for e in driver.get_log("browser")))
