"""Request parameters and content negotiation shared by lists, gets and watches."""

from urllib.parse import parse_qs

from .status import ApiError, bad_request

# How long a read asking for a resourceVersion the server has not reached
# waits for it before answering "Too large resource version", as the watch
# cache does (its blockTimeout).
TOO_LARGE_WAIT = 3.0

JSON = "application/json"
TABLE_TYPE = "application/json;as=Table;v={v};g=meta.k8s.io"
PARTIAL_TYPE = "application/json;as=PartialObjectMetadata;v={v};g=meta.k8s.io"
PARTIAL_LIST_TYPE = "application/json;as=PartialObjectMetadataList;v={v};g=meta.k8s.io"


def negotiate(accept):
    """("json"|"table"|"partial", meta version) for an Accept header; 406 if none fits.

    kubectl get asks for a Table first; a metadata-only informer asks for
    PartialObjectMetadata(List); kubectl's discovery asks for aggregated
    discovery first, which this server does not serve, so it falls through
    to plain JSON (and the Content-Type says so: client-go then reads it as
    unaggregated discovery).
    """
    if not accept:
        return "json", None
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype, params = fields[0].lower(), dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        as_, g, v = params.get("as"), params.get("g"), params.get("v")
        if mtype not in ("application/json", "application/*", "*/*"):
            continue
        if as_ is None:
            return "json", None
        if g == "meta.k8s.io" and v in ("v1", "v1beta1"):
            if as_ == "Table":
                return "table", v
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "partial", v
    raise ApiError(406, "NotAcceptable",
                   "only the following media types are accepted: application/json")


def flat_query(raw):
    # A repeated parameter keeps its last value, which is all any client here sends.
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def is_true(value):
    # Go's strconv.ParseBool, which the apiserver's query decoding uses.
    return value in ("1", "t", "T", "true", "TRUE", "True")


def int_param(query, name):
    try:
        return max(0, int(query.get(name) or 0))
    except ValueError:
        raise bad_request(f"invalid {name}: {query.get(name)!r}") from None


def parse_rv(text):
    try:
        rv = int(text)
    except ValueError:
        rv = -1
    if rv < 0:
        raise bad_request(f"invalid resource version: {text!r}")
    return rv
