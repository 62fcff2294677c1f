"""A real git repository in a temporary directory, with commits dated as the test says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, date: str | None = None, author: str = "Ada") -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.invalid",
               "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": f"{author.lower()}@example.invalid",
               "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        if date:
            env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        return subprocess.run(["git", *args], cwd=self.path, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, files: dict[str, str], message: str, *, date: str, author: str = "Ada") -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, date=date, author=author)
        return self.git("rev-parse", "HEAD")


def shop(path: Path) -> tuple[Repo, dict[str, str]]:
    """web and worker, with commits touching web, worker, both, and neither."""
    repo = Repo(path)
    c = {}
    c["start"] = repo.commit({"images/web/Dockerfile": "FROM python\n", "images/web/app.py": "v1\n",
                              "images/worker/Dockerfile": "FROM python\n", "images/worker/worker.py": "v1\n",
                              "README.md": "shop\n"}, "start", date="2026-01-01T10:00:00Z")
    c["web1"] = repo.commit({"images/web/app.py": "v2\n"}, "web: new greeting", date="2026-01-02T10:00:00Z",
                            author="Grace")
    c["docs"] = repo.commit({"README.md": "shop, documented\n"}, "docs: readme", date="2026-01-03T10:00:00Z")
    c["worker1"] = repo.commit({"images/worker/worker.py": "v2\n"}, "worker: faster ticks",
                               date="2026-01-04T10:00:00Z")
    c["web2"] = repo.commit({"images/web/Dockerfile": "FROM python:3.12\n"}, "web: pin the base image",
                            date="2026-01-05T10:00:00Z")
    return repo, c
