"""The ECR lifecycle policy: keep N tagged images, expire untagged ones, never expire releases."""

from __future__ import annotations

import json

# Promoted digests carry `release-<env>-v<N>` tags (set by `dockyard promote`).
RELEASE_TAG_PREFIX = "release-"
# ECR has no "keep" action. A rule that matches an image shields it from every
# lower-priority rule, so rule 1 matches release tags and only expires past this count.
RELEASE_KEEP = 10000


def lifecycle_policy(keep_images: int, untagged_expiry_days: int) -> str:
    rules = [
        {
            "rulePriority": 1,
            "description": "Promoted releases are never expired by the rules below",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": [RELEASE_TAG_PREFIX],
                "countType": "imageCountMoreThan",
                "countNumber": RELEASE_KEEP,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"Expire untagged images after {untagged_expiry_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": untagged_expiry_days,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 3,
            "description": f"Keep the {keep_images} newest tagged images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*"],
                "countType": "imageCountMoreThan",
                "countNumber": keep_images,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)
