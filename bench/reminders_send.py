"""Send time of the reminder benchmark, side by side with bare loops (bench/reminders.py).

- emails: the worker (claim, re-check, link, render, SMTP, record) against a bare smtplib
  loop sending the same rendered messages over one connection, to the same aiosmtpd sink;
- two worker processes against one;
- SMS: the worker against a bare http.client loop posting the same payloads (keep-alive)
  to the same local stand-in of the provider;
- letters: claim + re-check + render of formal notices against bare fpdf2 drawing the same
  layout (a new FPDF and its fonts per letter, as fpdf2 is used plainly).

Every measured loop runs in a child process of its own, started before the clock starts
(imports, connections to the database) and released together; the peers run in their own
processes too (bench/reminder_peers.py).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
FAR = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def _release(factory: Any, channel: str, count: int) -> list[int]:
    """Make ``count`` messages of ``channel`` due now (sent ones go round again, so a small
    database serves every phase); every other message stays held."""
    with factory() as session:
        session.execute(
            text(
                "UPDATE reminder_messages SET status = 'pending', attempts = 0, "
                "claimed_by = NULL, claimed_until = NULL WHERE status = 'sent' AND channel = :c"
            ),
            {"c": channel},
        )
        session.execute(
            text("UPDATE reminder_messages SET next_attempt_at = :far WHERE status = 'pending'"),
            {"far": FAR},
        )
        ids = list(
            session.scalars(
                text(
                    "SELECT id FROM reminder_messages WHERE channel = :c AND status = 'pending' "
                    "ORDER BY id LIMIT :n"
                ),
                {"c": channel, "n": count},
            )
        )
        for start in range(0, len(ids), 500):
            chunk = ",".join(str(int(i)) for i in ids[start : start + 500])
            session.execute(
                text(f"UPDATE reminder_messages SET next_attempt_at = :past WHERE id IN ({chunk})"),  # noqa: S608 - integers
                {"past": PAST},
            )
        session.commit()
    return ids


def _children(args_list: list[list[str]]) -> list[dict[str, Any]]:
    """Start the children, wait until each is ready, release them together, collect."""
    script = str(ROOT / "bench" / "reminders.py")
    processes = [
        subprocess.Popen(
            [sys.executable, script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_list
    ]
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            _, err = process.communicate()
            raise SystemExit(f"child failed before starting:\n{line}\n{err}")
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"child failed:\n{out}\n{err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _rate(results: list[dict[str, Any]], key: str = "done") -> float:
    total = sum(r[key] for r in results)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return total / seconds if seconds > 0 else 0.0


def _wait_for_go() -> float:
    print("ready", flush=True)
    sys.stdin.readline()
    return time.time()


# --- children ------------------------------------------------------------------------------------


def child_deliver(settings: Any, profile: str = "") -> dict[str, Any]:
    """One worker process: deliver rounds until nothing is due."""
    from portal.cli.reminders import delivery_context
    from portal.db import make_engine, make_session_factory
    from portal.reminders.outbox import deliver_round, new_worker_id

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    ctx = delivery_context(settings, any_time=True)
    ctx.warm_up()  # as portal worker does when it starts
    worker_id = new_worker_id()
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
    start = _wait_for_go()
    if profiler:
        profiler.start()
    done = 0
    while result := deliver_round(factory, ctx, worker_id):
        done += result.sent
    end = time.time()
    if profiler:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, color=False))
    ctx.close_connections()
    engine.dispose()
    return {"done": done, "start": start, "end": end}


def _sent(settings: Any, channel: str, ids: list[int]) -> list[Any]:
    """The rows the worker sent among ``ids``, as it rendered them."""
    from portal.db import make_engine

    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, cycle, recipient, subject, body_text, body_html FROM reminder_messages "
                "WHERE status = 'sent' AND channel = :c ORDER BY id"
            ),
            {"c": channel},
        ).all()
    engine.dispose()
    wanted = set(ids)
    return [r for r in rows if r.id in wanted]


def child_bare_smtp(settings: Any, ids: list[int]) -> dict[str, Any]:
    """smtplib over one connection, the same rendered messages as the worker sent."""
    import smtplib
    from email.message import EmailMessage

    rows = _sent(settings, "email", ids)
    start = _wait_for_go()
    with smtplib.SMTP(settings.smtp.host, settings.smtp.port) as client:
        for row in rows:
            message = EmailMessage()
            message["From"] = settings.smtp.sender
            message["To"] = row.recipient
            message["Subject"] = row.subject
            message["Message-ID"] = f"<bare-{row.id}.{row.cycle}@pay.relance.example>"
            message["Date"] = "Wed, 11 Mar 2026 15:00:00 +0000"
            message.set_content(row.body_text)
            message.add_alternative(row.body_html, subtype="html")
            client.send_message(message)
    return {"done": len(rows), "start": start, "end": time.time()}


def child_bare_sms(settings: Any, ids: list[int]) -> dict[str, Any]:
    """http.client, one kept-alive connection, the payloads the worker posted."""
    import base64
    import http.client
    import urllib.parse

    rows = _sent(settings, "sms", ids)
    s = settings.sms
    parts = urllib.parse.urlsplit(s.api_url)
    path = f"/2010-04-01/Accounts/{s.account_sid}/Messages.json"
    auth = base64.b64encode(f"{s.account_sid}:{s.auth_token}".encode()).decode()
    start = _wait_for_go()
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    for row in rows:
        body = urllib.parse.urlencode(
            {"To": row.recipient, "From": s.sender, "Body": row.body_text}
        )
        connection.request(
            "POST",
            path,
            body=body.encode(),
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "I-Twilio-Idempotency-Token": f"bare-{row.id}",
            },
        )
        response = connection.getresponse()
        json.loads(response.read())
    connection.close()
    return {"done": len(rows), "start": start, "end": time.time()}


# --- the phase ---------------------------------------------------------------------------------


def measure(
    url: str, workdir: Path, sample: int, settings_for: Any, profile_dir: str = "", rounds: int = 3
) -> dict[str, Any]:
    from bench.reminder_peers import Peer
    from portal.db import make_engine, make_session_factory

    smtp, sms = Peer("smtp"), Peer("sms")
    engine = make_engine(url)
    factory = make_session_factory(engine)
    common = ["--url", url, "--workdir", str(workdir)]
    peers = ["--smtp-port", str(smtp.port), "--sms-port", str(sms.port)]
    out: dict[str, Any] = {}
    try:
        ones, bares, twos, bare_twos = [], [], [], []
        # Rounds alternate the worker, the bare loop and two workers: load that drifts
        # during the run (the machine is shared) slows all three alike; medians compared.
        for round_number in range(rounds):
            ids = _release(factory, "email", sample)
            profile = (
                ["--profile", f"{profile_dir}/deliver-{round_number}.txt"] if profile_dir else []
            )
            one = _children([["--phase", "deliver", *common, *peers, *profile]])
            ones.append(_rate(one))
            out["sent_one"] = one[0]["done"]
            ids_arg = ["--ids", ",".join(map(str, ids))]
            bares.append(_rate(_children([["--phase", "bare-smtp", *common, *peers, *ids_arg]])))
            two_ids = _release(factory, "email", 2 * sample)
            two = _children([["--phase", "deliver", *common, *peers] for _ in range(2)])
            twos.append(_rate(two))
            out["sent_two"] = sum(r["done"] for r in two)
            # Two bare loops at once, the same messages: what this machine and the sink can
            # take from two senders, the ceiling the two workers are measured against.
            halves = [two_ids[0::2], two_ids[1::2]]
            bare_twos.append(
                _rate(
                    _children(
                        [
                            [
                                "--phase",
                                "bare-smtp",
                                *common,
                                *peers,
                                "--ids",
                                ",".join(map(str, h)),
                            ]
                            for h in halves
                        ]
                    )
                )
            )
        out["one_worker"] = statistics.median(ones)
        out["bare_smtp"] = statistics.median(bares)
        out["two_workers"] = statistics.median(twos)
        out["two_bare"] = statistics.median(bare_twos)
        out["rounds"] = {"one": ones, "bare": bares, "two": twos, "two_bare": bare_twos}
        out["smtp_received"] = smtp.count
        sms_ids = _release(factory, "sms", max(sample // 2, 1))
        out["sms_app"] = _rate(_children([["--phase", "deliver", *common, *peers]]))
        sms_arg = ["--ids", ",".join(map(str, sms_ids))]
        out["sms_bare"] = _rate(_children([["--phase", "bare-sms", *common, *peers, *sms_arg]]))
        out["sms_received"] = sms.count
        out.update(_letters(factory, settings_for(url, workdir, smtp.port), min(100, sample)))
    finally:
        smtp.stop()
        sms.stop()
        engine.dispose()
    return out


def _letters(factory: Any, settings: Any, sample: int) -> dict[str, float]:
    """Formal notices: claim + re-check + render (rolled back) against bare fpdf2."""
    from bench.bare_letter import bare_letters
    from portal.cli.reminders import delivery_context
    from portal.reminders.outbox import claim

    ctx = delivery_context(settings, any_time=True)
    ctx.warm_up()
    with factory() as session:
        session.execute(
            text("UPDATE reminder_messages SET next_attempt_at = :far WHERE status = 'pending'"),
            {"far": FAR},
        )
        ids = list(
            session.scalars(
                text(
                    "SELECT id FROM reminder_messages WHERE channel = 'letter' "
                    "AND status = 'pending' ORDER BY id LIMIT :n"
                ),
                {"n": sample},
            )
        )
        if not ids:
            return {"letters_app": 0.0, "letters_bare": 0.0}
        for message_id in ids:
            session.execute(
                text("UPDATE reminder_messages SET next_attempt_at = :past WHERE id = :id"),
                {"past": PAST, "id": message_id},
            )
        started = time.perf_counter()
        deliveries = []
        while len(deliveries) < len(ids):
            batch = claim(session, ctx, "bench-letters", limit=10)
            if not batch:
                break
            deliveries.extend(batch)
        app_seconds = time.perf_counter() - started
        session.rollback()
    rows = [d.text for d in deliveries]
    started = time.perf_counter()
    bare_letters(settings.company.name, rows)
    bare_seconds = time.perf_counter() - started
    return {
        "letters_app": len(deliveries) / app_seconds,
        "letters_bare": len(rows) / bare_seconds,
    }
