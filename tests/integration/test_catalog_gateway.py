"""The catalog through the HTTP gateway (T2): every endpoint, every refusal, and the rule
that a refused request leaves the catalog exactly as it was."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.platform import Platform
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

Http = Callable[..., tuple[int, object]]


@pytest.fixture(scope="module")
def platform(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with Platform(
        amqp_uri, tmp_path_factory.mktemp("catalog-gateway"), services=("catalog",)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(platform: Platform) -> dict[str, str]:
    return {
        role: platform.login(f"{role}-user", role=role)
        for role in ("support", "admin", "customer", "sales", "finance")
    }


@pytest.fixture
def as_support(platform: Platform, tokens: dict) -> Http:
    return lambda method, path, **kw: platform.http(method, path, token=tokens["support"], **kw)


def _everything(platform: Platform, token: str) -> tuple:
    """The whole catalog as any user sees it."""
    views = []
    for path in ("/major-categories", "/minor-categories", "/packages"):
        status, body = platform.http("GET", path, token=token, query={"per_page": 500})
        assert status == 200, body
        views.append(body)
    return tuple(views)


def _refused(platform: Platform, tokens: dict, status: int, code: str, request: Callable) -> dict:
    before = _everything(platform, tokens["customer"])
    got, body = request()
    assert (got, body["error"]["code"]) == (status, code), body
    assert _everything(platform, tokens["customer"]) == before
    return body["error"]


def _code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6].upper()}"


@pytest.fixture
def tree(as_support: Http) -> dict:
    status, major = as_support(
        "POST",
        "/major-categories",
        body={"code": _code("RN"), "name": "Renewal", "type": "renewal"},
    )
    assert status == 201, major
    status, minor = as_support(
        "POST",
        "/minor-categories",
        body={"code": _code("RN-4G"), "name": "4G", "major_category_id": major["category_id"]},
    )
    assert status == 201, minor
    status, package = as_support(
        "POST",
        "/packages",
        body={
            "code": _code("RN-CN-Y"),
            "name": "4G renewal, yearly",
            "minor_category_id": minor["category_id"],
            "pricing": "per_year",
            "amount": "100.00",
            "currency": "CNY",
            "description": "a year of 4G connectivity",
        },
    )
    assert status == 201, package
    return {"major": major, "minor": minor, "package": package}


def test_categories_are_created_read_changed_listed_and_deleted(
    platform: Platform, tokens: dict, as_support: Http
) -> None:
    code = _code("VA")
    status, major = platform.http(
        "POST",
        "/major-categories",
        token=tokens["admin"],
        body={"code": f" {code} ", "name": "Value-added", "type": "value_added"},
    )
    assert status == 201 and major["code"] == code
    category = f"/major-categories/{major['category_id']}"
    status, minor = as_support(
        "POST",
        "/minor-categories",
        body={"code": _code("VA-SMS"), "name": "SMS", "major_category_id": major["category_id"]},
    )
    assert (status, minor["type"]) == (201, "value_added")
    assert platform.http("GET", category, token=tokens["customer"]) == (200, major)
    status, changed = as_support("PATCH", category, body={"name": "Extras"})
    assert (status, changed["name"], changed["code"]) == (200, "Extras", code)
    status, listed = platform.http(
        "GET", "/major-categories", token=tokens["sales"], query={"code": code.lower()}
    )
    assert (status, [c["category_id"] for c in listed["items"]]) == (200, [major["category_id"]])
    status, minors = as_support(
        "GET", "/minor-categories", query={"major_category_id": major["category_id"]}
    )
    assert minors["total"] == 1 and minors["items"][0]["code"] == minor["code"]
    minor_path = f"/minor-categories/{minor['category_id']}"
    status, renamed = as_support("PATCH", minor_path, body={"name": "SMS alerts"})
    assert (status, renamed["name"]) == (200, "SMS alerts")
    assert as_support("GET", minor_path) == (200, renamed)
    assert as_support("DELETE", minor_path) == (204, None)
    assert as_support("DELETE", category) == (204, None)
    assert as_support("GET", category)[0] == 404
    assert as_support("DELETE", minor_path)[0] == 404


def test_packages_are_created_read_changed_priced_withdrawn_and_deleted(
    platform: Platform, tokens: dict, as_support: Http, tree: dict
) -> None:
    package = tree["package"]
    path = f"/packages/{package['package_id']}"
    assert package["kind"] == "renewal"  # from its category
    assert package["major_category_id"] == tree["major"]["category_id"]
    assert platform.http("GET", path, token=tokens["customer"]) == (200, package)
    status, quote = platform.http(
        "GET", path + "/quote", token=tokens["customer"], query={"months": 7}
    )
    assert (status, quote["amount"], quote["unit_price"]) == (200, "58.33", "100.00")
    status, changed = as_support("PATCH", path, body={"amount": "120.00", "currency": "USD"})
    assert (status, changed["amount"], changed["currency"]) == (200, "120.00", "USD")
    assert as_support("GET", path + "/quote", query={"months": 12})[1]["amount"] == "120.00"
    status, withdrawn = as_support("POST", path + "/withdraw")
    assert (status, withdrawn["on_sale"]) == (200, False)
    status, listed = as_support(
        "GET",
        "/packages",
        query={
            "on_sale": "false",
            "currency": "USD",
            "kind": "renewal",
            "minor_category_id": tree["minor"]["category_id"],
            "amount_min": "119.99",
            "amount_max": "120.00",
        },
    )
    assert [p["package_id"] for p in listed["items"]] == [package["package_id"]]
    status, back = as_support("POST", path + "/put-on-sale")
    assert (status, back["on_sale"]) == (200, True)
    assert as_support("DELETE", path) == (204, None)
    assert as_support("GET", path)[0] == 404
    # the category is free again
    assert as_support("DELETE", f"/minor-categories/{tree['minor']['category_id']}") == (204, None)


def test_lists_page(as_support: Http, tree: dict) -> None:
    for n in range(3):
        status, _ = as_support(
            "POST",
            "/packages",
            body={
                "code": f"{tree['package']['code']}-P{n}",
                "name": f"page {n}",
                "minor_category_id": tree["minor"]["category_id"],
                "pricing": "per_month",
                "amount": f"{n + 1}.00",
                "currency": "CNY",
            },
        )
        assert status == 201
    query = {"minor_category_id": tree["minor"]["category_id"], "per_page": 2, "sort": "-amount"}
    status, first = as_support("GET", "/packages", query=query)
    status, second = as_support("GET", "/packages", query={**query, "page": 2})
    assert (first["total"], first["page"], len(first["items"])) == (4, 1, 2)
    amounts = [p["amount"] for p in first["items"] + second["items"]]
    assert amounts == ["100.00", "3.00", "2.00", "1.00"]


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ('"-1"', "positive"),
        ("-1", "positive"),
        ('"0"', "positive"),
        ('"0.001"', "two decimals"),
        ("0.001", "two decimals"),
        ('"1e3"', "decimal string"),
        ("1e3", "decimal string"),
        ('"abc"', "decimal string"),
        ('"10000000.01"', "at most"),
    ],
)
def test_bad_amounts_are_refused(
    platform: Platform, tokens: dict, tree: dict, amount: str, why: str
) -> None:
    # the amount as a raw JSON literal: 1e3 and 0.001 must reach the gateway as written
    fields = {"code": _code("BAD"), "name": "bad", "kind": "renewal", "pricing": "per_month"}
    raw = json.dumps({**fields, "currency": "CNY"})[:-1] + ', "amount": ' + amount + "}"
    error = _refused(
        platform,
        tokens,
        422,
        "VALIDATION_FAILED",
        lambda: platform.http("POST", "/packages", token=tokens["support"], raw=raw),
    )
    assert why in error["fields"]["amount"][0]
    # a change is checked the same way
    path = f"/packages/{tree['package']['package_id']}"
    _refused(
        platform,
        tokens,
        422,
        "VALIDATION_FAILED",
        lambda: platform.http(
            "PATCH", path, token=tokens["support"], raw='{"amount": ' + amount + "}"
        ),
    )


def test_every_refusal_changes_nothing(platform: Platform, tokens: dict, tree: dict) -> None:
    support, customer = tokens["support"], tokens["customer"]
    package, minor, major = tree["package"], tree["minor"], tree["major"]
    new_package = {
        "code": _code("NEW"),
        "name": "new",
        "kind": "renewal",
        "pricing": "per_month",
        "amount": "10.00",
        "currency": "CNY",
    }

    def post(path: str, body: dict, token: str = support) -> Callable:
        return lambda: platform.http("POST", path, token=token, body=body)

    # duplicate codes, whatever the case and spaces
    duplicate = _refused(
        platform,
        tokens,
        409,
        "CONFLICT",
        post("/packages", {**new_package, "code": f" {package['code'].lower()} "}),
    )
    assert "code" in duplicate["fields"]
    _refused(
        platform,
        tokens,
        409,
        "CONFLICT",
        post("/major-categories", {"code": major["code"].lower(), "name": "x", "type": "renewal"}),
    )
    _refused(
        platform,
        tokens,
        409,
        "CONFLICT",
        post(
            "/minor-categories",
            {"code": minor["code"], "name": "x", "major_category_id": major["category_id"]},
        ),
    )
    # values that break a rule
    for field, value in (("currency", "EUR"), ("pricing", "weekly"), ("kind", "value_added")):
        error = _refused(
            platform,
            tokens,
            422,
            "VALIDATION_FAILED",
            post(
                "/packages",
                {**new_package, field: value, "minor_category_id": minor["category_id"]},
            ),
        )
        assert field in error["fields"]
    _refused(
        platform,
        tokens,
        422,
        "VALIDATION_FAILED",
        post(
            "/minor-categories",
            {
                "code": _code("M"),
                "name": "m",
                "major_category_id": major["category_id"],
                "type": "value_added",
            },
        ),
    )
    _refused(
        platform,
        tokens,
        422,
        "VALIDATION_FAILED",
        post("/packages", {**new_package, "minor_category_id": "no-such-category"}),
    )
    _refused(
        platform,
        tokens,
        422,
        "VALIDATION_FAILED",
        post("/packages", {**new_package, "code": "   "}),
    )
    # malformed requests
    _refused(platform, tokens, 400, "BAD_REQUEST", post("/packages", {"code": "X"}))
    _refused(
        platform, tokens, 400, "BAD_REQUEST", post("/packages", {**new_package, "colour": "red"})
    )
    _refused(
        platform,
        tokens,
        400,
        "BAD_REQUEST",
        lambda: platform.http("POST", "/packages", token=support, raw="{not json"),
    )
    # things in use
    in_use = _refused(
        platform,
        tokens,
        409,
        "CONFLICT",
        lambda: platform.http("DELETE", f"/major-categories/{major['category_id']}", token=support),
    )
    assert in_use["fields"] == {"minor_categories": [minor["code"]], "packages": [package["code"]]}
    in_use = _refused(
        platform,
        tokens,
        409,
        "CONFLICT",
        lambda: platform.http("DELETE", f"/minor-categories/{minor['category_id']}", token=support),
    )
    assert in_use["fields"] == {"packages": [package["code"]]}
    _refused(
        platform,
        tokens,
        409,
        "CONFLICT",
        lambda: platform.http(
            "PATCH",
            f"/major-categories/{major['category_id']}",
            token=support,
            body={"type": "value_added"},
        ),
    )
    # not found
    _refused(
        platform,
        tokens,
        404,
        "NOT_FOUND",
        lambda: platform.http("PATCH", "/packages/nope", token=support, body={"name": "x"}),
    )
    # nobody but support and admin writes; nobody without a token reads
    pid, mid, cid = package["package_id"], major["category_id"], minor["category_id"]
    writes = [
        ("POST", "/major-categories", {"code": _code("C"), "name": "c", "type": "renewal"}),
        ("PATCH", f"/major-categories/{mid}", {"name": "mine"}),
        ("DELETE", f"/major-categories/{mid}", None),
        ("POST", "/minor-categories", {"code": _code("C"), "name": "c", "major_category_id": mid}),
        ("PATCH", f"/minor-categories/{cid}", {"name": "mine"}),
        ("DELETE", f"/minor-categories/{cid}", None),
        ("POST", "/packages", new_package),
        ("PATCH", f"/packages/{pid}", {"amount": "0.01"}),
        ("POST", f"/packages/{pid}/withdraw", None),
        ("POST", f"/packages/{pid}/put-on-sale", None),
        ("DELETE", f"/packages/{pid}", None),
    ]
    for role in ("customer", "sales", "finance"):
        for method, path, body in writes:
            _refused(
                platform,
                tokens,
                403,
                "FORBIDDEN",
                lambda m=method, p=path, b=body, r=role: platform.http(
                    m, p, token=tokens[r], body=b
                ),
            )
    for method, path, body in [
        *writes,
        ("GET", "/packages", None),
        ("GET", f"/packages/{pid}", None),
    ]:
        status, answer = platform.http(method, path, body=body)
        assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")
    assert _everything(platform, customer)[2]["total"] >= 1


def test_a_bound_package_can_only_be_withdrawn(
    platform: Platform, tokens: dict, as_support: Http, tree: dict
) -> None:
    package = tree["package"]
    path = f"/packages/{package['package_id']}"
    device = str(860000000000000 + uuid.uuid4().int % 10**9)
    platform.publish(
        "devices",
        [
            {
                "id": str(uuid.uuid4()),
                "type": "package_bound",
                "version": 1,
                "source": "devices",
                "subject": device,
                "sequence": 2,
                "time": "2026-03-01T08:00:00+00:00",
                "correlation_id": None,
                "causation_id": None,
                "data": {
                    "device_id": device,
                    "company_id": "c1",
                    "package_id": package["package_id"],
                    "previous_package_id": None,
                },
            }
        ],
    )
    wait_for(
        lambda: as_support("GET", path)[1]["bound_devices"] == 1,
        timeout=20,
        what="the binding to reach the catalog",
    )
    error = _refused(platform, tokens, 409, "CONFLICT", lambda: as_support("DELETE", path))
    assert error["fields"] == {"devices": [device]}
    assert device in error["message"] and "withdraw" in error["message"]
    status, withdrawn = as_support("POST", path + "/withdraw")
    assert (status, withdrawn["on_sale"], withdrawn["bound_devices"]) == (200, False, 1)


def test_the_openapi_document_describes_the_catalog(platform: Platform) -> None:
    status, spec = platform.http("GET", "/openapi.json")
    assert status == 200
    for path, methods in {
        "/major-categories": {"get", "post"},
        "/major-categories/{category_id}": {"get", "patch", "delete"},
        "/minor-categories": {"get", "post"},
        "/minor-categories/{category_id}": {"get", "patch", "delete"},
        "/packages": {"get", "post"},
        "/packages/{package_id}": {"get", "patch", "delete"},
        "/packages/{package_id}/withdraw": {"post"},
        "/packages/{package_id}/put-on-sale": {"post"},
        "/packages/{package_id}/quote": {"get"},
    }.items():
        assert set(spec["paths"][path]) >= methods
    listing = spec["paths"]["/packages"]["get"]
    assert {"amount_min", "amount_max", "currency", "on_sale"} <= {
        p["name"] for p in listing["parameters"]
    }
    created = spec["paths"]["/packages"]["post"]
    assert created["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PackageIn"
    )
    assert "PackagePage" in spec["components"]["schemas"]
