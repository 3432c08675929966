import io, logging
from helpers import login, make_user
import sys; sys.path.insert(0, "tests/survey_app"); from test_printouts import _setup, _unit, csrf_from
from survey_app.models import BackgroundJob
from survey_app.extensions import db
from sqlalchemy import select

def test_dbg(client, app_ctx):
    logging.basicConfig(level=logging.DEBUG)
    campaign = _setup()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    x1 = _unit("X1")
    page = client.get(f"/print/{campaign.key}")
    r = client.post(f"/print/{campaign.key}", data={"csrf_token": csrf_from(page.get_data(True)), "unit_id": x1.id, "group": "citizen", "kind": "postal_pack"})
    print(r.status_code, r.headers.get("Location"))
    job = db.session.scalar(select(BackgroundJob))
    print(job.status, job.message, job.result, job.params)
    from survey_app.tasks import run_job
    run_job(job.id)
    db.session.expire_all()
    print(job.status, job.message, job.result)
    assert 0
