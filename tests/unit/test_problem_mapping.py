import json

from shared.errors import PayloadTooLarge, TooManyRequests, ValidationFailed
from shared.http import to_problem


def test_problem_carries_status_code_detail_and_headers() -> None:
    response = to_problem(TooManyRequests("slow down", retry_after=7))
    body = json.loads(response.get_body())
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "7"
    assert body["code"] == "too_many_requests"
    assert body["detail"] == "slow down"
    assert body["type"].endswith("too-many-requests")


def test_guide_error_text_is_kept_exactly() -> None:
    body = json.loads(
        to_problem(PayloadTooLarge("Media file exceeds maximum size of 5MB")).get_body()
    )
    assert body["status"] == 413
    assert body["detail"] == "Media file exceeds maximum size of 5MB"


def test_validation_errors_name_the_field() -> None:
    body = json.loads(to_problem(ValidationFailed.field("tenantId", "must be a GUID")).get_body())
    assert body["errors"] == [{"field": "tenantId", "message": "must be a GUID"}]
