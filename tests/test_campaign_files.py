"""Campaigns as files: `campaign create|show|pause|resume|stop|retry-failed`, checked as the composer checks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import segments
from core.campaigns import CampaignSpec, get_campaign, launch
from core.campaigns.files import document_from_spec, spec_from_document
from core.cli import main
from core.models import Campaign, OutboxMessage, User
from core.timeutil import utcnow
from tests.definitions import LAPSED_2_WEEKS

WEEKLY = {
    "kind": "recurring",
    "frequency": "weekly",
    "interval": 1,
    "weekdays": ["TH"],
    "time": "17:45",
    "start": (utcnow().date() + timedelta(days=7)).isoformat(),
    "end": {"kind": "never"},
    "local_time": True,
}
FILE = {
    "name": "Lapsed user message - 2 weeks",
    "segment": "Lapsed users - 2 weeks",
    "channel": "push",
    "platforms": ["iOS"],
    "message": {"title": "We miss you, {{ first_name | default: 'there' }}", "body": "Come back and see what is new."},
    "schedule": WEEKLY,
    "settings": {"reeligible": True, "reeligible_after_days": 7},
}


@pytest.fixture
def lapsed(app_database):
    segments.save_segment(app_database, "Lapsed users - 2 weeks", LAPSED_2_WEEKS)
    return app_database


def write(tmp_path, document, name="campaign.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def campaigns(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Campaign)).scalar()


def test_create_launches_the_file_and_show_prints_it_back(lapsed, tmp_path, capsys):
    assert main(["campaign", "create", write(tmp_path, FILE)]) == 0
    assert capsys.readouterr().out.startswith("launched “Lapsed user message - 2 weeks” (id 1): ")
    assert main(["campaign", "show", "Lapsed user message - 2 weeks"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out[: out.index("\nstatus: ")])
    assert {key: shown[key] for key in ("name", "segment", "channel", "platforms")} == {
        key: FILE[key] for key in ("name", "segment", "channel", "platforms")
    }
    assert {key: shown["message"][key] for key in ("title", "body")} == FILE["message"]
    assert {key: shown["schedule"][key] for key in WEEKLY} == WEEKLY
    assert {key: shown["settings"][key] for key in FILE["settings"]} == FILE["settings"]
    # What `show` prints reads back as the stored campaign (less the instant it became active).
    stored = get_campaign(1, lapsed)[0]
    assert spec_from_document(lapsed, shown) == stored.model_copy(
        update={"settings": stored.settings.model_copy(update={"active_from": None})}
    )
    assert "status: scheduled, next send " in out and out.rstrip().endswith("messages: none yet")


def test_a_file_and_the_composer_give_the_same_campaign(lapsed, tmp_path):
    segment = segments.get_segment(lapsed, "Lapsed users - 2 weeks")
    spec = CampaignSpec(
        name="From the UI",
        segment_id=segment.id,
        platforms=["iOS"],
        message={
            "title": "Hi {{ first_name }}",
            "body": "Back soon?",
            "offers": {"High": "5% off"},
            "prediction_id": None,
        },
        schedule=WEEKLY,
    )
    from_ui = launch(spec, lapsed)
    document = {**document_from_spec(lapsed, get_campaign(from_ui, lapsed)[0]), "name": "From a file"}
    assert main(["campaign", "create", write(tmp_path, document)]) == 0
    ui_spec, ui_record = get_campaign(from_ui, lapsed)
    file_spec, file_record = get_campaign(from_ui + 1, lapsed)

    def comparable(stored):
        return stored.model_copy(
            update={"name": "", "settings": stored.settings.model_copy(update={"active_from": None})}
        )

    assert comparable(file_spec) == comparable(ui_spec)
    assert (file_record["status"], ui_record["status"]) == ("scheduled", "scheduled")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"colour": "red"}, "the campaign: unknown field(s) 'colour'; allowed: "),
        (
            {"audience": LAPSED_2_WEEKS.to_json()},
            "give the audience as 'segment' (a saved segment's name) or 'audience'",
        ),
        ({"segment": "Nobody saved this"}, "Nobody saved this"),
        ({"message": {"title": "t", "body": ""}}, "cannot launch: The message body is empty."),
        ({"message": {"title": "t", "body": "{{ first_name "}}, "cannot launch: Template error in Body"),
        (
            {"message": {"title": "t", "body": "b", "prediction": "Nope"}},
            "'message.prediction': no prediction named 'Nope'",
        ),
        ({"message": {"titel": "t", "body": "b"}}, "message: unknown field 'titel'"),
        (
            {"schedule": {**WEEKLY, "weekdays": ["XX"]}},
            "schedule: 'weekdays' must be MO, TU, WE, TH, FR, SA or SU, not 'XX'",
        ),
        ({"channel": "fax"}, "the campaign: 'channel' must be push, email or in_app, not 'fax'"),
        ({"settings": {"cap": 3}}, "delivery settings: unknown field 'cap'"),
        ({"platforms": "iOS"}, "the campaign: 'platforms' must be a list"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_problem_and_creates_nothing(lapsed, tmp_path, capsys, change, error):
    assert main(["campaign", "create", write(tmp_path, {**FILE, **change})]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and error in err and err.count("\n") == 1
    assert campaigns(lapsed) == 0


@pytest.mark.parametrize(
    ("content", "error"),
    [("{not json", "not valid JSON"), ("[1, 2]", "a campaign file is a JSON object")],
)
def test_a_file_that_is_not_a_campaign_document_is_refused(lapsed, tmp_path, capsys, content, error):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["campaign", "create", str(path)]) == 2
    assert error in capsys.readouterr().err


def test_pause_resume_stop_by_name(lapsed, tmp_path, capsys):
    main(["campaign", "create", write(tmp_path, FILE)])
    capsys.readouterr()
    name = FILE["name"]
    for action, status in (("pause", "paused"), ("resume", "scheduled"), ("stop", "stopped")):
        assert main(["campaign", action, name]) == 0
        assert capsys.readouterr().out.strip() == f"“{name}” is now {status}"
    assert main(["campaign", "resume", name]) == 2
    assert "is stopped: it cannot resume" in capsys.readouterr().err
    assert main(["campaign", "pause", "No such campaign"]) == 2
    assert "no campaign named 'No such campaign'" in capsys.readouterr().err


def test_create_as_draft_then_retry_failed(lapsed, tmp_path, capsys):
    assert main(["campaign", "create", "--draft", write(tmp_path, FILE)]) == 0
    assert get_campaign(1, lapsed)[1]["status"] == "draft"
    with lapsed.begin() as connection:
        user = connection.execute(select(func.min(User.id))).scalar()
        connection.execute(
            OutboxMessage.__table__.insert(),
            [
                {"campaign_id": 1, "occurrence": "x", "user_id": user, "channel": "push", "send_at": utcnow(),
                 "status": "failed", "last_error": "HTTP 400"},
            ],
        )  # fmt: skip
    capsys.readouterr()
    assert main(["campaign", "retry-failed", FILE["name"]]) == 0
    assert capsys.readouterr().out.startswith("1 message(s) queued again")
    with lapsed.connect() as connection:
        assert connection.execute(select(OutboxMessage.status)).scalar() == "queued"
