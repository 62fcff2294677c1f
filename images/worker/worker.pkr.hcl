# The worker image built with Packer instead of `docker build`: same base, same
# layout and settings as images/worker/Dockerfile, for teams whose image
# pipeline is Packer.
#
# Written for Packer 1.6.6 (Debian 12's `packer`, docker builder built in),
# HCL2. Packer 1.10 and newer ship without the docker builder: install it first
# with `packer plugins install github.com/hashicorp/docker` (the template has no
# `required_plugins` block because 1.6 does not know it).
#
#   DOCKER_HOST=... packer build \
#     -var python_image=127.0.0.1:5000/dockyard/python-base@sha256:... \
#     -var commit_sha=$(git rev-parse HEAD) \
#     -var repository=127.0.0.1:5000/dockyard/worker -var tag=build-1 \
#     images/worker/worker.pkr.hcl
#
# Packer tags and pushes the image (docker-tag, docker-push). It does not print
# the digest: read it from the engine after the build,
#   docker image inspect --format '{{index .RepoDigests 0}}' REPOSITORY:TAG
# and deploy that reference (repository@sha256:...), never the tag.
#
# Differences from the Dockerfile: `docker commit` cannot set HEALTHCHECK, so
# the image carries none (the ECS task definition and the Kubernetes probes
# define their own, running `python worker.py --check`); and the image is one
# layer on the base instead of several, with an empty /packer-files (Packer's
# mount point while building).

variable "python_image" {
  type        = string
  description = "Base image with python on PATH and groupadd/useradd; same default as the Dockerfile."
  default     = "python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254"
}

variable "pull" {
  type        = bool
  description = "Pull python_image first; false uses the engine's copy (offline builds)."
  default     = true
}

variable "commit_sha" {
  type    = string
  default = "unknown"
}

variable "repository" {
  type        = string
  description = "Where the image is tagged and pushed, e.g. 127.0.0.1:5000/dockyard/worker."
}

variable "tag" {
  type    = string
  default = "latest"
}

source "docker" "worker" {
  image  = var.python_image
  pull   = var.pull
  commit = true
  # Packer's default run command sets `--entrypoint=/bin/sh`, which the commit
  # would keep (`docker commit --change "ENTRYPOINT []"` does not clear it), so
  # the build container gets /bin/sh as its command instead.
  run_command = ["-d", "-i", "-t", "--", "{{.Image}}", "/bin/sh"]
  # Applied by `docker commit`.
  changes = [
    "ENV PYTHONUNBUFFERED=1",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    "ENV COMMIT_SHA=${var.commit_sha}",
    "ENV HEARTBEAT_FILE=/tmp/worker-heartbeat",
    "ENV WORK_INTERVAL_SECONDS=10",
    "LABEL org.opencontainers.image.revision=${var.commit_sha}",
    "WORKDIR /app",
    "USER 10001:10001",
    "CMD [\"python\", \"worker.py\"]",
  ]
}

build {
  sources = ["source.docker.worker"]

  provisioner "shell" {
    inline = ["mkdir -p /app"]
  }

  provisioner "file" {
    source      = "${path.root}/worker.py"
    destination = "/app/worker.py"
  }

  # Byte-compiled and owned by root: the service user can read /app but not
  # change it, and needs no write access (read-only root filesystem).
  provisioner "shell" {
    inline = [
      "groupadd --system --gid 10001 app",
      "useradd --system --uid 10001 --gid app --no-create-home app",
      "python -m compileall -q /app",
      "chown -R root:root /app",
      "chmod -R go-w /app",
    ]
  }

  post-processors {
    post-processor "docker-tag" {
      repository = var.repository
      tags       = [var.tag]
    }
    post-processor "docker-push" {}
  }
}
