from fastapi.testclient import TestClient


def test_openapi_document_lists_every_resource(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    base = "/data/foundation/flowservice"
    for collection in ("connections", "sourceConnections", "targetConnections", "flows"):
        assert {"get", "post"} <= set(paths[f"{base}/{collection}"])
        assert {"get", "patch", "delete"} <= set(paths[f"{base}/{collection}/{{resource_id}}"])
    assert "post" in paths[f"{base}/flows/{{flow_id}}/action"]
    assert "post" in paths["/ims/token/v3"]
    assert client.get("/docs").status_code == 200
