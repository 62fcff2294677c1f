"""Every name with a limit: stacks, branch slugs and AWS/Kubernetes resource names.

Names are deterministic. When a name must be shortened, a short hash of the
full name is appended so that two long names that share a prefix stay distinct.
"""

from __future__ import annotations

import hashlib
import re

from dockyard.errors import BadInput

BRANCH_PREFIX = "branch-"
HASH_LENGTH = 6

# AWS and Kubernetes limits, by the name they constrain.
LOAD_BALANCER_MAX = 32
TARGET_GROUP_MAX = 32
IAM_ROLE_MAX = 64
ECR_REPOSITORY_MAX = 256
SSM_PARAMETER_MAX = 1011
SSM_PARAMETER_DEPTH = 15
LOG_GROUP_MAX = 512
RDS_IDENTIFIER_MAX = 63
DNS_LABEL_MAX = 63
STACK_MAX = 100
SERVICE_MAX = 32
# Branch slugs are kept short enough that `<namespace>-<slug>` and every
# per-service name built from them fit with room to spare.
BRANCH_SLUG_MAX = 40

_SERVICE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
_STACK = re.compile(r"^[A-Za-z0-9_.-]+$")
_SSM_NAME = re.compile(r"^/[a-zA-Z0-9_.\-/]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(name: str, limit: int, *, separator: str = "-") -> str:
    """`name` if it fits in `limit`, else a prefix plus a hash of the whole name."""
    if len(name) <= limit:
        return name
    keep = limit - HASH_LENGTH - len(separator)
    return f"{name[:keep].rstrip('-_.')}{separator}{short_hash(name)}"


def validate_service_name(name: str) -> str:
    """Service names appear in DNS labels, ECR paths and ECS names: keep them to the strictest."""
    if not isinstance(name, str) or len(name) > SERVICE_MAX or not _SERVICE.match(name):
        raise BadInput(
            f"service name {name!r} is not valid; expected lowercase letters, digits and '-', "
            f"starting with a letter, at most {SERVICE_MAX} characters"
        )
    return name


def validate_stack_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > STACK_MAX or not _STACK.match(name):
        raise BadInput(
            f"stack name {name!r} is not valid; expected letters, digits, '_', '.', '-', at most {STACK_MAX} characters"
        )
    return name


def branch_slug(branch: str) -> str:
    """A git branch name as `[a-z0-9-]`, at most BRANCH_SLUG_MAX, distinct for distinct branches.

    Characters outside `[a-z0-9]` collapse to '-'; when that loses information
    (case, punctuation) or the slug is too long, a hash of the branch keeps it unique.
    """
    if not isinstance(branch, str) or not branch.strip():
        raise BadInput("branch name is empty", hint="pass the git branch, e.g. feature/login")
    lowered = branch.strip().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")
    if not slug:
        raise BadInput(f"branch name {branch!r} has no letters or digits to name a stack after")
    lossless = slug == branch
    if lossless and len(slug) <= BRANCH_SLUG_MAX:
        return slug
    keep = BRANCH_SLUG_MAX - HASH_LENGTH - 1
    return f"{slug[:keep].rstrip('-')}-{short_hash(branch)}"


def branch_stack(branch: str) -> str:
    return BRANCH_PREFIX + branch_slug(branch)


def is_branch_stack(stack: str) -> bool:
    """True for `branch-<slug>` stack names (a slug is lowercase `[a-z0-9-]`)."""
    slug = stack[len(BRANCH_PREFIX) :] if stack.startswith(BRANCH_PREFIX) else ""
    return bool(slug) and len(slug) <= BRANCH_SLUG_MAX and bool(_DNS_LABEL.match(slug))


def qualified_stack(organization: str, project: str, stack: str) -> str:
    """`<organization>/<project>/<stack>`: the organization is the one the engine reports for the stack
    (`organization` only on self-managed backends; a user or team name on Pulumi Cloud)."""
    return f"{organization}/{project}/{stack}"


def database_user(service: str) -> str:
    """A service's own PostgreSQL user for IAM database authentication (no quoting needed)."""
    return validate_service_name(service).replace("-", "_")


def release_parameter(stack: str) -> str:
    return f"/dockyard/{stack}/release"


def validate_parameter_name(name: str) -> str:
    """SSM parameter names: a path of [a-zA-Z0-9_.-] segments, at most 1011 characters and 15 levels."""
    if (
        not isinstance(name, str)
        or len(name) > SSM_PARAMETER_MAX
        or not _SSM_NAME.match(name)
        or "//" in name
        or name.endswith("/")
        or name.count("/") > SSM_PARAMETER_DEPTH
        or name.lower().startswith(("/aws", "/ssm"))
    ):
        raise BadInput(
            f"SSM parameter name {name!r} is not valid; expected a path like /dockyard/prod/release "
            f"([a-zA-Z0-9_.-/], at most {SSM_PARAMETER_DEPTH} levels, not under /aws or /ssm)"
        )
    return name


def ecr_repository(service: str) -> str:
    return f"dockyard/{validate_service_name(service)}"


def load_balancer(stack: str) -> str:
    # ALB names: 32 chars, alphanumerics and '-', no leading/trailing '-', not 'internal-'.
    return fit(_alnum_dash(f"dky-{stack}"), LOAD_BALANCER_MAX)


def target_group(stack: str, service: str, port: int) -> str:
    # The port is part of the hash: changing it replaces the target group, and
    # create-before-delete needs the replacement to have a different name.
    base = _alnum_dash(f"{stack}-{service}")
    keep = TARGET_GROUP_MAX - HASH_LENGTH - 1
    return f"{base[:keep].rstrip('-')}-{short_hash(f'{stack}/{service}/{port}')}"


def iam_role(stack: str, service: str, kind: str) -> str:
    # IAM role names: 64 chars of [\w+=,.@-].
    return fit(f"dockyard-{stack}-{service}-{kind}", IAM_ROLE_MAX)


def log_group(stack: str, service: str) -> str:
    return fit(f"/dockyard/{stack}/{service}", LOG_GROUP_MAX)


def cluster(stack: str) -> str:
    return fit(_alnum_dash(f"dockyard-{stack}"), 255)


def db_identifier(stack: str) -> str:
    # RDS identifiers: start with a letter, letters/digits/'-', no '--', no trailing '-'.
    return fit(re.sub(r"-+", "-", _alnum_dash(f"dockyard-{stack}").lower()), RDS_IDENTIFIER_MAX)


def kubernetes_namespace(namespace: str, slug: str | None = None) -> str:
    """The namespace of a stack: `namespace`, or `<namespace>-<slug>` for a branch, a DNS label."""
    name = f"{namespace}-{slug}" if slug else namespace
    return fit(name, DNS_LABEL_MAX)


def _branch_block(stack: str) -> int:
    """A block number in 0-489 derived from the stack name."""
    return int(short_hash(stack, 8), 16) % 490


# ALB rule priorities run 1-50000; the last one is kept for the default route (`/*`),
# which must be evaluated after every specific route.
DEFAULT_ROUTE_PRIORITY = 50000


def listener_priority(service: str) -> int:
    """A routed service's rule priority (1-49999), from its name alone.

    AWS changes a rule's priority in place and Pulumi deletes removed rules last, so a
    priority that moved when another service came or went fails with PriorityInUse.
    """
    return 1 + int(short_hash(service, 8), 16) % (DEFAULT_ROUTE_PRIORITY - 1)


# A shared stack's own listener on its base's load balancer listens on one of these ports;
# preview URLs then need no DNS: http://<load balancer>:<port>/.
BRANCH_PORT_FIRST = 10000
BRANCH_PORT_LAST = 10489
# Listeners per application load balancer (the default AWS quota).
ALB_LISTENERS_MAX = 50
# Tag on a shared stack's listener naming the stack that owns it.
LISTENER_STACK_TAG = "dockyard:stack"


def branch_listener_port(stack: str) -> int:
    """A shared stack's preferred listener port, from its name. `dockyard branch up` takes the next
    free one when another listener has it; the program falls back to this when none was chosen."""
    return BRANCH_PORT_FIRST + _branch_block(stack)


def _alnum_dash(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9-]", "-", text)).strip("-")
