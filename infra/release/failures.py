"""Every failure as a DockyardError: engine errors, AWS errors, and the unexpected."""

from __future__ import annotations

from dockyard.errors import BadInput, Conflict, DockyardError


def as_dockyard_error(err: BaseException) -> DockyardError:
    if isinstance(err, DockyardError):
        return err
    try:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return DockyardError(f"unexpected: {err}")
    if isinstance(err, NoCredentialsError):
        return DockyardError("no AWS credentials", hint="set AWS_PROFILE, or run `aws sso login`")
    if isinstance(err, NoRegionError):
        return BadInput("no AWS region", hint="set AWS_REGION (or AWS_DEFAULT_REGION)")
    if isinstance(err, EndpointConnectionError):
        return DockyardError(f"cannot reach AWS: {err}", hint="check AWS_ENDPOINT_URL and the network")
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", str(err))
        operation = getattr(err, "operation_name", "AWS call")
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            return DockyardError(f"{operation}: access denied: {message}",
                                 hint="the role needs ssm:GetParameter*, ssm:PutParameter, ssm:LabelParameterVersion "
                                      "on the release parameters")
        if code in ("TooManyUpdates", "ConcurrentModificationException"):
            return Conflict(f"{operation}: {message}", hint="another command is writing; run it again")
        return DockyardError(f"{operation} failed ({code}): {message}")
    if isinstance(err, KeyboardInterrupt):
        return DockyardError("interrupted")
    return DockyardError(f"unexpected: {type(err).__name__}: {err}", hint="run again with --debug for a traceback")
