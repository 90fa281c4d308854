import json
from jobtracker_local.apigw import http_event
from jobtracker_local.handlers import FakeContext, load_handler


def test_post_then_get(aws):
    create = load_handler("functions/create_job", "app.handler")
    api = load_handler("functions/api", "app.handler")
    resp = create(http_event("POST", "/jobs", {"definition": "demo", "parameters": {"a": 1}}), FakeContext())
    print(resp)
    assert resp["statusCode"] == 201
    job = json.loads(resp["body"])
    got = api(http_event("GET", f"/jobs/{job['id']}"), FakeContext())
    print(got)
    assert got["statusCode"] == 200
    lst = api(http_event("GET", "/jobs", query="limit=5"), FakeContext())
    print(lst)
    assert lst["statusCode"] == 200
