"""The SSM release store: each version of the parameter is a release, labels mark its state.

SSM keeps the last 100 versions of a parameter and refuses a new one while the
oldest still carries a label, so labels only ever sit on the two versions that
matter (`deployed`, `known-good`) and move forward with them.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from dockyard.errors import Conflict, DockyardError, ManifestError
from dockyard.manifest import Release
from dockyard.release.stores.base import Appended, Hold, StoredRelease

HISTORY_PAGE = 50  # the most get_parameter_history returns per call
TIER = "Intelligent-Tiering"  # standard up to 4 KB, advanced only when a manifest outgrows it


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


class SsmStore:
    def __init__(self, client: Any, parameter: str) -> None:
        self.client = client
        self.parameter = parameter
        self.hold_parameter = f"{parameter}-hold"
        self.where = f"SSM parameter {parameter}"
        self._cache: list[dict] | None = None

    # -------------------------------------------------------------- reading

    def _all_versions(self) -> list[dict]:
        """Every kept version, oldest first (two pages at most: SSM keeps 100)."""
        if self._cache is None:
            versions: list[dict] = []
            kwargs: dict[str, Any] = {"Name": self.parameter, "WithDecryption": False, "MaxResults": HISTORY_PAGE}
            try:
                while True:
                    page = self.client.get_parameter_history(**kwargs)
                    versions.extend(page.get("Parameters", []))
                    if not page.get("NextToken"):
                        break
                    kwargs["NextToken"] = page["NextToken"]
            except ClientError as err:
                if _code(err) != "ParameterNotFound":
                    raise
            self._cache = sorted(versions, key=lambda p: p["Version"])
        return self._cache

    def _stored(self, entry: dict) -> StoredRelease:
        release = Release.from_json(entry["Value"], where=f"{self.where} version {entry['Version']}")
        return StoredRelease(version=int(entry["Version"]), release=release,
                             labels=tuple(sorted(entry.get("Labels") or [])))

    def current(self) -> StoredRelease | None:
        versions = self._all_versions()
        return self._stored(versions[-1]) if versions else None

    def get(self, version: int) -> StoredRelease | None:
        for entry in self._all_versions():
            if entry["Version"] == version:
                return self._stored(entry)
        return None

    def history(self, limit: int | None = None) -> list[StoredRelease]:
        newest_first = list(reversed(self._all_versions()))
        return [self._stored(e) for e in (newest_first if limit is None else newest_first[:limit])]

    def labels(self) -> dict[str, int]:
        return {label: int(e["Version"]) for e in self._all_versions() for label in e.get("Labels") or []}

    # -------------------------------------------------------------- writing

    def append(self, release: Release, *, expected: int | None) -> Appended:
        try:
            response = self.client.put_parameter(
                Name=self.parameter, Value=release.to_json(), Type="String", Tier=TIER,
                Overwrite=expected is not None,
                Description="dockyard release manifest: the pinned image of each service")
        except ClientError as err:
            if _code(err) == "ParameterAlreadyExists":
                raise Conflict(f"{self.where} was created by someone else after this command read it",
                               hint="run the command again") from None
            if _code(err) == "ParameterMaxVersionLimitExceeded":
                raise self._version_limit() from None
            raise
        finally:
            self._cache = None
        version = int(response["Version"])
        first = (expected or 0) + 1
        return Appended(version=version, raced=tuple(range(first, version)))

    def _version_limit(self) -> DockyardError:
        oldest = self._all_versions()[0] if self._all_versions() else {"Version": "?", "Labels": []}
        labels = ", ".join(oldest.get("Labels") or []) or "a label"
        return DockyardError(
            f"{self.where} already keeps 100 versions and the oldest, v{oldest['Version']}, still carries "
            f"{labels}; SSM cannot drop a labelled version to make room",
            hint=f"move the label forward (promote or roll back to a newer release) or remove it: aws ssm "
                 f"unlabel-parameter-version --name {self.parameter} --parameter-version {oldest['Version']} "
                 f"--labels {labels.split(', ')[0]}")

    def label(self, label: str, version: int) -> None:
        # A label sits on one version at a time: labelling a version moves it there.
        self.client.label_parameter_version(Name=self.parameter, ParameterVersion=version, Labels=[label])
        self._cache = None

    # -------------------------------------------------------------- hold

    def hold(self) -> Hold | None:
        try:
            value = self.client.get_parameter(Name=self.hold_parameter)["Parameter"]["Value"]
        except ClientError as err:
            if _code(err) == "ParameterNotFound":
                return None
            raise
        try:
            return Hold.from_dict(json.loads(value))
        except (ValueError, KeyError, TypeError):
            raise ManifestError(f"SSM parameter {self.hold_parameter} is not a dockyard hold",
                                hint=f"aws ssm delete-parameter --name {self.hold_parameter}") from None

    def set_hold(self, hold: Hold | None) -> None:
        if hold is None:
            try:
                self.client.delete_parameter(Name=self.hold_parameter)
            except ClientError as err:
                if _code(err) != "ParameterNotFound":
                    raise
            return
        self.client.put_parameter(Name=self.hold_parameter, Value=json.dumps(hold.to_dict(), sort_keys=True),
                                  Type="String", Overwrite=True,
                                  Description="dockyard: promotions refused until the rollback is released")

    def delete(self) -> None:
        for name in (self.parameter, self.hold_parameter):
            try:
                self.client.delete_parameter(Name=name)
            except ClientError as err:
                if _code(err) != "ParameterNotFound":
                    raise
        self._cache = None
