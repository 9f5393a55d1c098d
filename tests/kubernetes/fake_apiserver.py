#!/usr/bin/env python3
"""A fake Kubernetes API server for tests: standard library only, plain HTTP, no auth.

    python3 fake_apiserver.py [PORT] [--objects DIR] [--history-size N] [--bookmark-interval S]

Prints `LISTENING <port>` on stdout once it accepts connections (PORT 0 or absent: a free one).
It serves /version, API discovery, and LIST / GET / WATCH / POST / PUT / PATCH / DELETE for the
resources in RESOURCES below, with resourceVersions, label and field selectors, pagination,
bookmarks, 410 Expired, server-side apply and status subresources, plus a control API for
tests under /_fake/. See README.md beside this file for what is faithful and what is not.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import random
import re
import select
import socket
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

try:  # optional: lets --objects hold .yaml files and apply bodies be real YAML
    import yaml  # type: ignore
except Exception:  # pragma: no cover
    yaml = None

VERSION_INFO = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T13:07:52Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Resource:
    def __init__(self, group, version, plural, kind, namespaced=True, short_names=(),
                 status=False, crd=False, categories=(), singular=None, verbs=ALL_VERBS):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.status = status          # has a /status subresource
        self.crd = crd                # custom resource: generation, no unconditional update
        self.categories = list(categories)
        self.singular = singular or kind.lower()
        self.verbs = list(verbs)
        self.api_version = f"{group}/{version}" if group else version
        self.list_kind = kind + "List"
        self.key = (group, plural)
        # "pods", "monitors.vigie.dev": the name Kubernetes uses in error messages
        self.qualified = f"{plural}.{group}" if group else plural

    def discovery(self):
        out = [{
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
        }]
        if self.short_names:
            out[0]["shortNames"] = self.short_names
        if self.categories:
            out[0]["categories"] = self.categories
        out[0]["storageVersionHash"] = base64.b64encode(
            hashlib.sha256(f"{self.api_version}/{self.kind}".encode()).digest())[:11].decode()
        if self.status:
            out.append({
                "name": self.plural + "/status",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            })
        return out


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=["ns"], status=True),
    Resource("", "v1", "nodes", "Node", namespaced=False, short_names=["no"], status=True),
    Resource("", "v1", "pods", "Pod", short_names=["po"], status=True, categories=["all"]),
    Resource("", "v1", "services", "Service", short_names=["svc"], status=True, categories=["all"]),
    Resource("", "v1", "endpoints", "Endpoints", short_names=["ep"]),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=["cm"]),
    Resource("", "v1", "events", "Event", short_names=["ev"]),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource("events.k8s.io", "v1", "events", "Event", short_names=["ev"]),
    Resource("vigie.dev", "v1alpha1", "monitors", "Monitor", short_names=["mon"], status=True,
             crd=True, categories=["vigie"]),
    Resource("vigie.dev", "v1alpha1", "alertrules", "AlertRule", short_names=["ar"], status=True,
             crd=True, categories=["vigie"]),
    Resource("vigie.dev", "v1alpha1", "alertroutes", "AlertRoute", short_names=["aroute"],
             status=True, crd=True, categories=["vigie"]),
]

PROMETHEUS_OPERATOR_RESOURCES = [
    Resource("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", short_names=["smon"],
             crd=True, categories=["prometheus-operator"]),
    Resource("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", short_names=["pmon"],
             crd=True, categories=["prometheus-operator"]),
    Resource("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", short_names=["promrule"],
             crd=True, categories=["prometheus-operator"]),
]

# Field selectors the real API server accepts, beyond metadata.name and metadata.namespace.
FIELD_SELECTORS = {
    ("", "pods"): {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                   "status.nominatedNodeName"},
    ("", "secrets"): {"type"},
    ("", "nodes"): {"spec.unschedulable"},
    ("", "namespaces"): {"status.phase"},
    ("", "events"): {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion",
                     "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                     "reportingComponent", "source", "type"},
    ("events.k8s.io", "events"): {"regarding.kind", "regarding.namespace", "regarding.name",
                                  "regarding.uid", "reason", "reportingController", "type"},
}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, extra=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.extra = extra or {}

    def status(self):
        return status_object(self.code, self.reason, self.message, self.details, **self.extra)


def status_object(code, reason, message, details=None, **extra):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason, "code": code}
    if details:
        st["details"] = details
    st.update(extra)
    return st


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                    _details(res, name))


def _details(res, name):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return d


def expired(message):
    return ApiError(410, "Expired", message)


# ---------------------------------------------------------------------------------------------
# selectors

LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def split_top(s):
    """Split on commas that are not inside parentheses."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [t.strip() for t in out if t.strip()]


def parse_label_selector(s):
    if not s:
        return []
    reqs = []
    for term in split_top(s):
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", term)
        if m:
            key, op = m.group(1), m.group(2)
            reqs.append((key, op, {v.strip() for v in m.group(3).split(",")}))
        elif term.startswith("!"):
            reqs.append((term[1:].strip(), "!exists", None))
        elif "!=" in term:
            k, v = term.split("!=", 1)
            reqs.append((k.strip(), "!=", v.strip()))
        elif "==" in term:
            k, v = term.split("==", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif "=" in term:
            k, v = term.split("=", 1)
            reqs.append((k.strip(), "=", v.strip()))
        else:
            reqs.append((term, "exists", None))
    for key, _, _ in reqs:
        if not LABEL_KEY_RE.match(key):
            raise ApiError(400, "BadRequest",
                           f'unable to parse requirement: invalid label key "{key}"')
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, val in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v == val):
            return False
        if op == "!=" and has and v == val:
            return False
        if op == "in" and not (has and v in val):
            return False
        if op == "notin" and has and v in val:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def parse_field_selector(res, s):
    if not s:
        return []
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_SELECTORS.get(res.key, set())
    reqs = []
    for term in split_top(s):
        if "!=" in term:
            k, v = term.split("!=", 1)
            op = "!="
        elif "==" in term:
            k, v = term.split("==", 1)
            op = "="
        elif "=" in term:
            k, v = term.split("=", 1)
            op = "="
        else:
            raise ApiError(400, "BadRequest", f'invalid selector: \'{s}\'; can\'t understand \'{term}\'')
        k = k.strip()
        if k not in allowed:
            raise ApiError(400, "BadRequest", f'field label not supported: {k}')
        reqs.append((k, op, v.strip()))
    return reqs


def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(part)
    if cur is None:
        if path == "spec.hostNetwork" or path == "spec.unschedulable":
            return "false"
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs, obj):
    for k, op, v in reqs:
        actual = field_value(obj, k)
        if op == "=" and actual != v:
            return False
        if op == "!=" and actual == v:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")

    def parent_of(parts):
        cur = doc
        for p in parts[:-1]:
            if isinstance(cur, list):
                cur = cur[int(p)]
            elif isinstance(cur, dict) and p in cur:
                cur = cur[p]
            else:
                raise ApiError(422, "Invalid", f"doc is missing path: /{'/'.join(parts)}")
        return cur

    def get(parts):
        cur = doc
        for p in parts:
            if isinstance(cur, list):
                cur = cur[int(p)]
            elif isinstance(cur, dict) and p in cur:
                cur = cur[p]
            else:
                raise ApiError(422, "Invalid", f"doc is missing path: /{'/'.join(parts)}")
        return cur

    def add(parts, value):
        nonlocal doc
        if not parts:
            doc = value
            return
        par, last = parent_of(parts), parts[-1]
        if isinstance(par, list):
            if last == "-":
                par.append(value)
            else:
                par.insert(int(last), value)
        else:
            par[last] = value

    def remove(parts):
        par, last = parent_of(parts), parts[-1]
        try:
            if isinstance(par, list):
                return par.pop(int(last))
            return par.pop(last)
        except (KeyError, IndexError, ValueError):
            raise ApiError(422, "Invalid", f"unable to remove nonexistent key: {last}")

    try:
        for op in ops:
            kind = op.get("op")
            parts = _pointer(op.get("path", ""))
            if kind == "add":
                add(parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                remove(parts)
            elif kind == "replace":
                remove(parts)
                add(parts, copy.deepcopy(op.get("value")))
            elif kind == "move":
                v = remove(_pointer(op["from"]))
                add(parts, v)
            elif kind == "copy":
                add(parts, copy.deepcopy(get(_pointer(op["from"]))))
            elif kind == "test":
                if get(parts) != op.get("value"):
                    raise ApiError(422, "Invalid", f"testing value {op.get('path')} failed")
            else:
                raise ApiError(400, "BadRequest", f"unknown json patch operation {kind!r}")
    except (IndexError, ValueError, TypeError) as e:
        raise ApiError(422, "Invalid", f"json patch failed: {e}")
    return doc


def leaf_paths(obj, prefix=()):
    """Paths of the leaves of a JSON value: maps recurse, everything else (lists too) is a leaf."""
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from leaf_paths(v, prefix + (k,))
    elif prefix:
        yield prefix


def remove_path(obj, path):
    chain = [obj]
    cur = obj
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return
        cur = cur[p]
        chain.append(cur)
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    # prune maps left empty, but not the top-level fields themselves
    for depth in range(len(path) - 1, 1, -1):
        parent = chain[depth - 1]
        key = path[depth - 1]
        if isinstance(parent.get(key), dict) and not parent[key]:
            parent.pop(key)


def apply_merge(target, patch):
    """Server-side apply, approximated: maps merge recursively, lists and scalars replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = apply_merge(out.get(k), v)
    return out


def fields_v1(paths):
    root = {}
    for path in paths:
        cur = root
        for p in path:
            cur = cur.setdefault("f:" + p, {})
    return root


# ---------------------------------------------------------------------------------------------
# the store

class Event:
    __slots__ = ("rv", "key", "type", "obj", "old")

    def __init__(self, rv, key, type_, obj, old):
        self.rv = rv
        self.key = key
        self.type = type_
        self.obj = obj
        self.old = old


SERVER_META = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp",
               "deletionGracePeriodSeconds", "managedFields", "selfLink")


class Store:
    def __init__(self, resources, history_size, bookmark_interval):
        self.resources = resources
        self.by_gvp = {(r.group, r.version, r.plural): r for r in resources}
        self.by_avk = {(r.api_version, r.kind): r for r in resources}
        self.cond = threading.Condition()
        self.rv = 0
        self.objects = {r.key: {} for r in resources}
        self.history = []                   # Events, oldest first
        self.history_size = history_size
        self.floor = 0                      # events with rv <= floor are gone
        self.managed = {}                   # (key, ns, name) -> {(manager, sub): set(paths)}
        self.bookmark_interval = bookmark_interval
        self.bookmark_epoch = 0
        self.close_epoch = 0
        self.close_expire = False
        self.watches = {}
        self.watch_seq = 0
        self.requests = []
        self.request_seq = 0
        self.failures = []
        self.fixture_dirs = []

    # -- helpers (call with the lock held) --

    def _commit(self, res, type_, obj, old):
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        ns = obj["metadata"].get("namespace", "") if res.namespaced else ""
        k = (ns, obj["metadata"]["name"])
        if type_ == "DELETED":
            self.objects[res.key].pop(k, None)
            self.managed.pop((res.key, ns, k[1]), None)
        else:
            self.objects[res.key][k] = obj
        self.history.append(Event(self.rv, res.key, type_, obj, old))
        if self.history_size >= 0 and len(self.history) > self.history_size:
            drop = len(self.history) - self.history_size
            self.floor = self.history[drop - 1].rv
            del self.history[:drop]
        self.cond.notify_all()
        return obj

    def _check_ns(self, res, ns):
        if res.namespaced and ("", ns) not in self.objects[("", "namespaces")]:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})

    def resource_for(self, obj):
        res = self.by_avk.get((obj.get("apiVersion"), obj.get("kind")))
        if res is None:
            raise ApiError(400, "BadRequest",
                           f"no resource for apiVersion {obj.get('apiVersion')!r} kind {obj.get('kind')!r}")
        return res

    def state_at(self, res, rv):
        """Objects of one resource as they were at resourceVersion rv (rolled back from history)."""
        if rv < self.floor:
            raise expired(f"too old resource version: {rv} ({self.floor})")
        objs = dict(self.objects[res.key])
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            if ev.key != res.key:
                continue
            md = ev.obj["metadata"]
            k = (md.get("namespace", "") if res.namespaced else "", md["name"])
            if ev.type == "ADDED":
                objs.pop(k, None)
            else:
                objs[k] = ev.old
        return objs

    # -- raw loading (fixtures and /_fake/objects): keeps status, no API semantics --

    def upsert_raw(self, obj, deterministic_uid=False):
        with self.cond:
            res = self.resource_for(obj)
            obj = copy.deepcopy(obj)
            md = obj.setdefault("metadata", {})
            if "name" not in md:
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            if res.namespaced:
                md.setdefault("namespace", "default")
            else:
                md.pop("namespace", None)
            ns = md.get("namespace", "")
            k = (ns, md["name"])
            old = self.objects[res.key].get(k)
            md.pop("resourceVersion", None)
            if old is not None:
                omd = old["metadata"]
                md.setdefault("uid", omd.get("uid"))
                md.setdefault("creationTimestamp", omd.get("creationTimestamp"))
                if res.crd and "generation" not in md:
                    gen = omd.get("generation", 1)
                    if _body(old, res) != _body(obj, res):
                        gen += 1
                    md["generation"] = gen
            else:
                if "uid" not in md:
                    md["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake/{res.qualified}/{ns}/{md['name']}")
                                    if deterministic_uid else uuid.uuid4())
                md.setdefault("creationTimestamp", now_rfc3339())
                if res.crd:
                    md.setdefault("generation", 1)
            return self._commit(res, "MODIFIED" if old is not None else "ADDED", obj, old)

    def delete_raw(self, res, ns, name):
        with self.cond:
            old = self.objects[res.key].get((ns if res.namespaced else "", name))
            if old is None:
                raise not_found(res, name)
            new = copy.deepcopy(old)
            return self._commit(res, "DELETED", new, old)

    def load_dir(self, d):
        files = sorted(os.listdir(d))
        n = 0
        objs = []
        for f in files:
            p = os.path.join(d, f)
            if f.endswith(".json"):
                with open(p) as fh:
                    data = json.load(fh)
                docs = [data]
            elif f.endswith((".yaml", ".yml")):
                if yaml is None:
                    raise SystemExit(f"{p}: YAML fixtures need PyYAML; use JSON")
                with open(p) as fh:
                    docs = [x for x in yaml.safe_load_all(fh) if x]
            else:
                continue
            for data in docs:
                if isinstance(data, list):
                    objs.extend(data)
                elif isinstance(data, dict) and data.get("kind", "").endswith("List") and "items" in data:
                    objs.extend(data["items"])
                else:
                    objs.append(data)
        # namespaces first so namespaced objects find theirs
        objs.sort(key=lambda o: 0 if o.get("kind") == "Namespace" else 1)
        for o in objs:
            self.upsert_raw(o, deterministic_uid=True)
            n += 1
        return n

    # -- API operations --

    def get(self, res, ns, name):
        with self.cond:
            obj = self.objects[res.key].get((ns if res.namespaced else "", name))
            if obj is None:
                raise not_found(res, name)
            return obj

    def list(self, res, ns, params):
        lsel = parse_label_selector(params.get("labelSelector", ""))
        fsel = parse_field_selector(res, params.get("fieldSelector", ""))
        limit = int(params.get("limit") or 0)
        cont = params.get("continue", "")
        rv_param = params.get("resourceVersion", "")
        rvm = params.get("resourceVersionMatch", "")
        with self.cond:
            start_key = None
            if cont:
                try:
                    tok = json.loads(base64.b64decode(cont + "=" * (-len(cont) % 4)))
                    list_rv = int(tok["rv"])
                    start_key = tuple(tok["start"])
                except Exception:
                    raise ApiError(400, "BadRequest", "continue key is not valid")
                if list_rv < self.floor:
                    raise expired("The provided continue parameter is too old to display a "
                                  "consistent list result. You can start a new list without "
                                  "the continue parameter.")
                objs = self.state_at(res, list_rv)
            else:
                if rvm and rvm not in ("Exact", "NotOlderThan"):
                    raise ApiError(400, "BadRequest", f"invalid resourceVersionMatch {rvm!r}")
                if rvm and rv_param == "":
                    raise ApiError(422, "Invalid", "resourceVersionMatch is forbidden unless resourceVersion is provided")
                if rv_param not in ("", "0"):
                    try:
                        want = int(rv_param)
                    except ValueError:
                        raise ApiError(400, "BadRequest", f"invalid resource version {rv_param!r}")
                    if want > self.rv:
                        deadline = time.monotonic() + 3
                        while want > self.rv and time.monotonic() < deadline:
                            self.cond.wait(deadline - time.monotonic())
                        if want > self.rv:
                            raise ApiError(504, "Timeout", f"Too large resource version: {want}, current: {self.rv}",
                                           {"causes": [{"reason": "ResourceVersionTooLarge",
                                                        "message": "Too large resource version"}],
                                            "retryAfterSeconds": 1})
                    if rvm == "Exact":
                        list_rv = want
                        objs = self.state_at(res, want)
                    else:
                        list_rv = self.rv
                        objs = dict(self.objects[res.key])
                else:
                    list_rv = self.rv
                    objs = dict(self.objects[res.key])
                    if rv_param == "0":
                        limit = 0  # the real API server serves rv=0 from its cache, ignoring limit
            keys = sorted(k for k, o in objs.items()
                          if (ns is None or k[0] == ns)
                          and labels_match(lsel, o["metadata"].get("labels"))
                          and fields_match(fsel, o))
        if start_key is not None:
            keys = [k for k in keys if k > start_key]
        meta = {"resourceVersion": str(list_rv)}
        if limit and len(keys) > limit:
            page = keys[:limit]
            tok = {"v": "meta.k8s.io/v1", "rv": list_rv, "start": list(page[-1])}
            meta["continue"] = base64.b64encode(json.dumps(tok).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = len(keys) - limit
            keys = page
        items = []
        for k in keys:
            o = objs[k]
            if not res.crd:
                # built-in types: list items carry no apiVersion/kind, as the real server does
                o = {kk: vv for kk, vv in o.items() if kk not in ("apiVersion", "kind")}
            items.append(o)
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}

    def _manager(self, params, ua):
        m = params.get("fieldManager")
        if m:
            return m
        return (ua or "unknown").split("/")[0] or "unknown"

    def _record_managed(self, res, obj, manager, operation, sub, paths):
        md = obj["metadata"]
        entries = [e for e in md.get("managedFields", [])
                   if not (e.get("manager") == manager and e.get("operation") == operation
                           and e.get("subresource", "") == sub)]
        e = {"manager": manager, "operation": operation, "apiVersion": res.api_version,
             "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
        if sub:
            e["subresource"] = sub
        entries.append(e)
        md["managedFields"] = entries

    def create(self, res, ns, body, params, ua, dry_run=False, from_apply=None):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion", res.api_version) != res.api_version:
            raise ApiError(400, "BadRequest",
                           f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({res.api_version})")
        if obj.get("kind", res.kind) != res.kind:
            raise ApiError(400, "BadRequest",
                           f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({res.kind})")
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise ApiError(400, "BadRequest",
                               "the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        with self.cond:
            if not md.get("name"):
                if md.get("generateName"):
                    chars = "bcdfghjklmnpqrstvwxz2456789"
                    md["name"] = md["generateName"] + "".join(random.choice(chars) for _ in range(5))
                else:
                    raise ApiError(422, "Invalid",
                                   f'{res.kind} "" is invalid: metadata.name: Required value: name or generateName is required',
                                   {"kind": res.kind, "causes": [{"reason": "FieldValueRequired", "field": "metadata.name"}]})
            self._check_ns(res, ns)
            k = (ns if res.namespaced else "", md["name"])
            if k in self.objects[res.key]:
                raise ApiError(409, "AlreadyExists", f'{res.qualified} "{md["name"]}" already exists',
                               _details(res, md["name"]))
            for f in SERVER_META:
                md.pop(f, None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_rfc3339()
            if res.crd:
                md["generation"] = 1
            if res.status:
                obj.pop("status", None)
                if res.key == ("", "pods"):
                    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
                elif res.key == ("", "namespaces"):
                    obj["status"] = {"phase": "Active"}
            manager = self._manager(params, ua)
            if from_apply is not None:
                self._record_managed(res, obj, manager, "Apply", "", from_apply)
                self.managed[(res.key, k[0], k[1])] = {(manager, ""): set(from_apply)}
            else:
                self._record_managed(res, obj, manager, "Update", "", _user_paths(body, res))
            if dry_run:
                obj["metadata"]["resourceVersion"] = str(self.rv)
                return obj
            return self._commit(res, "ADDED", obj, None)

    def update(self, res, ns, name, sub, compute, params, ua, operation, check_rv=None,
               dry_run=False, apply_paths=None, require_rv=False):
        """compute(old_copy) -> new full object. Enforces server-owned fields and status rules."""
        with self.cond:
            k = (ns if res.namespaced else "", name)
            old = self.objects[res.key].get(k)
            if old is None:
                raise not_found(res, name)
            cur_rv = old["metadata"]["resourceVersion"]
            if check_rv is not None and check_rv != "" and check_rv != cur_rv:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; please apply your changes to the latest version and try again',
                               _details(res, name))
            if require_rv and not check_rv and res.crd:
                raise ApiError(422, "Invalid",
                               f'{res.kind}.{res.group} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
                               {"name": name, "group": res.group, "kind": res.kind,
                                "causes": [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                            "message": "Invalid value: 0x0: must be specified for an update"}]})
            proposed = compute(copy.deepcopy(old))
            if not isinstance(proposed, dict):
                raise ApiError(400, "BadRequest", "the result is not a JSON object")
            pmd = proposed.get("metadata") or {}
            if pmd.get("name", name) != name:
                raise ApiError(400, "BadRequest",
                               f"the name of the object ({pmd.get('name')}) does not match the name on the URL ({name})")
            if res.namespaced and pmd.get("namespace", ns) != ns:
                raise ApiError(400, "BadRequest",
                               "the namespace of the provided object does not match the namespace sent on the request")
            if sub == "status":
                new = copy.deepcopy(old)
                if "status" in proposed:
                    new["status"] = proposed["status"]
                else:
                    new.pop("status", None)
            else:
                new = proposed
                new["apiVersion"] = res.api_version
                new["kind"] = res.kind
                md = new.setdefault("metadata", {})
                omd = old["metadata"]
                md["name"] = name
                if res.namespaced:
                    md["namespace"] = ns
                for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "generation", "managedFields"):
                    if f in omd:
                        md[f] = copy.deepcopy(omd[f])
                    else:
                        md.pop(f, None)
                if res.status:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
                if "generation" in omd and _body(old, res) != _body(new, res):
                    md["generation"] = omd["generation"] + 1
            new["metadata"].pop("resourceVersion", None)
            new["metadata"]["resourceVersion"] = cur_rv
            if _comparable(new) == _comparable(old):
                if apply_paths is not None:
                    self._set_apply_paths(res, k, params, ua, sub, apply_paths, dry_run)
                return old  # no-op: no new resourceVersion, no event
            manager = self._manager(params, ua)
            paths = apply_paths if apply_paths is not None else []
            self._record_managed(res, new, manager, operation, sub, paths)
            if dry_run:
                return new
            if apply_paths is not None:
                self._set_apply_paths(res, k, params, ua, sub, apply_paths, dry_run)
            md = new["metadata"]
            if md.get("deletionTimestamp") and not md.get("finalizers"):
                return self._commit(res, "DELETED", new, old)
            return self._commit(res, "MODIFIED", new, old)

    def _set_apply_paths(self, res, k, params, ua, sub, paths, dry_run):
        if dry_run:
            return
        manager = self._manager(params, ua)
        self.managed.setdefault((res.key, k[0], k[1]), {})[(manager, sub)] = set(paths)

    def apply(self, res, ns, name, sub, patch, params, ua, dry_run=False):
        manager = params.get("fieldManager")
        if not manager:
            raise ApiError(422, "Invalid",
                           'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                           {"group": "meta.k8s.io", "kind": "PatchOptions",
                            "causes": [{"reason": "FieldValueRequired", "field": "fieldManager",
                                        "message": "Required value: is required for apply patch"}]})
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "apply patch must be an object")
        for f, want in (("apiVersion", res.api_version), ("kind", res.kind)):
            if patch.get(f) not in (None, want):
                raise ApiError(400, "BadRequest", f"{f} in the apply body ({patch.get(f)}) does not match {want}")
        pmd = patch.get("metadata") or {}
        if pmd.get("name") not in (None, name):
            raise ApiError(400, "BadRequest",
                           f"the name of the object ({pmd.get('name')}) does not match the name on the URL ({name})")
        check_rv = pmd.get("resourceVersion")
        clean = copy.deepcopy(patch)
        clean.pop("apiVersion", None)
        clean.pop("kind", None)
        cmd = clean.get("metadata")
        if isinstance(cmd, dict):
            for f in SERVER_META + ("name", "namespace"):
                cmd.pop(f, None)
            if not cmd:
                clean.pop("metadata")
        if sub == "status":
            clean = {"status": clean["status"]} if "status" in clean else {}
        elif res.status:
            clean.pop("status", None)
        paths = set(leaf_paths(clean))
        with self.cond:
            k = (ns if res.namespaced else "", name)
            if k not in self.objects[res.key]:
                if sub == "status":
                    raise not_found(res, name)
                body = copy.deepcopy(clean)
                body["apiVersion"] = res.api_version
                body["kind"] = res.kind
                body.setdefault("metadata", {})["name"] = name
                return self.create(res, ns, body, params, ua, dry_run=dry_run, from_apply=paths), 201
            before = self.managed.get((res.key, k[0], k[1]), {})
            mine = before.get((manager, sub), set())
            others = set()
            for (m, s), ps in before.items():
                if (m, s) != (manager, sub):
                    others |= ps

            def compute(obj):
                for p in mine - paths:
                    if p not in others and not any(p[:len(q)] == q or q[:len(p)] == p for q in paths):
                        remove_path(obj, p)
                return apply_merge(obj, clean)

            out = self.update(res, ns, name, sub, compute, params, ua, "Apply", check_rv=check_rv,
                              dry_run=dry_run, apply_paths=paths)
            return out, 200

    def delete(self, res, ns, name, opts, dry_run=False):
        with self.cond:
            k = (ns if res.namespaced else "", name)
            old = self.objects[res.key].get(k)
            if old is None:
                raise not_found(res, name)
            pre = (opts or {}).get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {res.qualified} "{name}": Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {old["metadata"].get("uid")}',
                               _details(res, name))
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {res.qualified} "{name}": Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, ResourceVersion in object meta: {old["metadata"]["resourceVersion"]}',
                               _details(res, name))
            if dry_run:
                return old
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if new["metadata"].get("generation"):
                    new["metadata"]["generation"] += 1
                return self._commit(res, "MODIFIED", new, old)
            if res.key == ("", "namespaces"):
                for r in self.resources:
                    if not r.namespaced:
                        continue
                    for (ons, oname), o in sorted(self.objects[r.key].items()):
                        if ons == name:
                            self._commit(r, "DELETED", copy.deepcopy(o), o)
            return self._commit(res, "DELETED", copy.deepcopy(old), old)


def _body(obj, res):
    """What a change to bumps metadata.generation: everything but metadata (and status)."""
    return {k: v for k, v in obj.items()
            if k not in ("metadata", "apiVersion", "kind") and not (k == "status" and res.status)}


def _comparable(obj):
    o = dict(obj)
    md = dict(o.get("metadata") or {})
    for f in ("resourceVersion", "managedFields"):
        md.pop(f, None)
    o["metadata"] = md
    return o


def _user_paths(body, res):
    clean = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    md = clean.get("metadata")
    if isinstance(md, dict):
        md = {k: v for k, v in md.items() if k not in SERVER_META + ("name", "namespace")}
        clean["metadata"] = md
    return list(leaf_paths(clean))


# ---------------------------------------------------------------------------------------------
# HTTP

def truthy(v):
    return v in ("true", "1", "True")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver/1"
    store: Store = None  # set in main
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # -- plumbing --

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.read(2)
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, obj, content_type="application/json"):
        data = obj if isinstance(obj, bytes) else (json.dumps(obj) + "\n").encode()
        if self._log is not None:
            self._log["code"] = code
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: ApiError):
        self._send(e.code, e.status())

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        st = self.store
        u = urlsplit(self.path)
        path = unquote(u.path)
        qs = parse_qs(u.query, keep_blank_values=True)
        params = {k: v[-1] for k, v in qs.items()}
        raw = self._read_body()
        ctype = self.headers.get("Content-Type", "")
        self._log = None
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except Exception:
                body = None
        if not path.startswith("/_fake/"):
            entry = {"method": method, "path": path, "query": u.query,
                     "params": {k: (v if len(v) > 1 else v[0]) for k, v in qs.items()},
                     "contentType": ctype, "accept": self.headers.get("Accept", ""),
                     "userAgent": self.headers.get("User-Agent", ""),
                     "body": body if body is not None else (raw.decode("utf-8", "replace") if raw else None),
                     "time": time.time()}
            with st.cond:
                st.request_seq += 1
                entry["seq"] = st.request_seq
                st.requests.append(entry)
                if len(st.requests) > 100000:
                    del st.requests[:10000]
            self._log = entry
        try:
            if path.startswith("/_fake/"):
                return self._control(method, path, params, body, raw)
            with st.cond:
                for f in st.failures:
                    if f["count"] != 0 and (not f.get("method") or f["method"] == method) \
                            and re.search(f.get("path", ""), path):
                        f["count"] -= 1
                        raise ApiError(f.get("code", 500), f.get("reason", "InternalError"),
                                       f.get("message", "injected failure"))
            if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
                return self._send(200, b"ok", "text/plain; charset=utf-8")
            if path.rstrip("/") == "/version":
                return self._send(200, VERSION_INFO)
            parts = [p for p in path.split("/") if p]
            agg = self._aggregated_version()
            if agg and len(parts) == 1 and parts[0] in ("api", "apis"):
                self._only_get(method)
                return self._send(200, self._aggregated(parts[0] == "api", agg),
                                  f"application/json;g=apidiscovery.k8s.io;v={agg};as=APIGroupDiscoveryList")
            if parts[:1] == ["api"]:
                if len(parts) == 1:
                    return self._only_get(method) or self._send(200, self._api_versions())
                if parts[1] != "v1":
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                if len(parts) == 2:
                    return self._only_get(method) or self._send(200, self._resource_list("", "v1"))
                return self._resource(method, "", "v1", parts[2:], params, body, raw, ctype)
            if parts[:1] == ["apis"]:
                if len(parts) == 1:
                    return self._only_get(method) or self._send(200, self._group_list())
                if len(parts) == 2:
                    g = self._group(parts[1])
                    if g is None:
                        raise ApiError(404, "NotFound", "the server could not find the requested resource")
                    return self._only_get(method) or self._send(200, g)
                group, version = parts[1], parts[2]
                if not any(r.group == group and r.version == version for r in st.resources):
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                if len(parts) == 3:
                    return self._only_get(method) or self._send(200, self._resource_list(group, version))
                return self._resource(method, group, version, parts[3:], params, body, raw, ctype)
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # pragma: no cover
            traceback.print_exc()
            try:
                self._error(ApiError(500, "InternalError", f"fake apiserver: {e!r}"))
            except Exception:
                self.close_connection = True

    def _only_get(self, method):
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        return None

    # -- discovery --

    def _api_versions(self):
        host, port = self.server.server_address[:2]
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{port}"}]}

    def _aggregated_version(self):
        """The aggregated discovery version the client asks for first (v2 or v2beta1), if any."""
        for part in self.headers.get("Accept", "").split(","):
            params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
            if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList" \
                    and params.get("v") in ("v2", "v2beta1"):
                return params["v"]
        return None

    def _aggregated(self, core, version):
        items = {}
        for r in self.store.resources:
            if (r.group == "") != core:
                continue
            g = items.setdefault(r.group, {"metadata": {"name": r.group, "creationTimestamp": None},
                                           "versions": []})
            if core:
                g["metadata"] = {"creationTimestamp": None}
            v = next((x for x in g["versions"] if x["version"] == r.version), None)
            if v is None:
                v = {"version": r.version, "resources": [], "freshness": "Current"}
                g["versions"].append(v)
            kind = {"group": r.group, "version": r.version, "kind": r.kind}
            e = {"resource": r.plural, "responseKind": kind,
                 "scope": "Namespaced" if r.namespaced else "Cluster",
                 "singularResource": r.singular, "verbs": r.verbs}
            if r.short_names:
                e["shortNames"] = r.short_names
            if r.categories:
                e["categories"] = r.categories
            if r.status:
                e["subresources"] = [{"subresource": "status", "responseKind": kind,
                                      "verbs": ["get", "patch", "update"]}]
            v["resources"].append(e)
        return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
                "metadata": {}, "items": list(items.values())}

    def _groups(self):
        groups = {}
        for r in self.store.resources:
            if r.group:
                groups.setdefault(r.group, [])
                if r.version not in groups[r.group]:
                    groups[r.group].append(r.version)
        return groups

    def _group(self, name):
        versions = self._groups().get(name)
        if versions is None:
            return None
        vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": vs, "preferredVersion": vs[0]}

    def _group_list(self):
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [{k: v for k, v in self._group(g).items() if k not in ("kind", "apiVersion")}
                           for g in self._groups()]}

    def _resource_list(self, group, version):
        resources = []
        for r in self.store.resources:
            if r.group == group and r.version == version:
                resources.extend(r.discovery())
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    # -- resources --

    def _resource(self, method, group, version, seg, params, body, raw, ctype):
        st = self.store
        watch = truthy(first_param(params, "watch"))
        if seg and seg[0] == "watch":  # legacy /api/v1/watch/... paths
            watch = True
            seg = seg[1:]
        ns = None
        if len(seg) >= 3 and seg[0] == "namespaces":
            r = st.by_gvp.get((group, version, seg[2]))
            if r is not None and r.namespaced:
                ns = seg[1]
                seg = seg[2:]
        if not seg:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        res = st.by_gvp.get((group, version, seg[0]))
        if res is None or len(seg) > 3 or (ns is not None and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = seg[1] if len(seg) >= 2 else None
        sub = seg[2] if len(seg) == 3 else ""
        if sub and not (sub == "status" and res.status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is not None and res.namespaced and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        dry_run = params.get("dryRun") == "All"
        ua = self.headers.get("User-Agent", "")
        if name is None:
            if method == "GET":
                if watch:
                    return self._watch(res, ns, params)
                return self._send(200, st.list(res, ns, params))
            if method == "POST":
                if res.namespaced and ns is None:
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
                obj = st.create(res, ns or "", self._json_body(body, raw), params, ua, dry_run=dry_run)
                return self._send(201, obj)
            if method == "DELETE":
                lst = st.list(res, ns, params)
                deleted = []
                for it in lst["items"]:
                    try:
                        deleted.append(st.delete(res, it["metadata"].get("namespace", ""), it["metadata"]["name"],
                                                 body if isinstance(body, dict) else {}, dry_run=dry_run))
                    except ApiError:
                        pass
                lst["items"] = deleted
                lst["metadata"] = {"resourceVersion": str(st.rv)}
                return self._send(200, lst)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        ns = ns or ""
        if method == "GET":
            if watch:  # watch of one object: a field selector on its name
                params = dict(params)
                params["fieldSelector"] = ",".join(filter(None, [params.get("fieldSelector"), f"metadata.name={name}"]))
                return self._watch(res, ns if res.namespaced else None, params)
            obj = st.get(res, ns, name)
            return self._send(200, obj)
        if method == "PUT":
            b = self._json_body(body, raw)
            check_rv = ((b.get("metadata") or {}).get("resourceVersion")) or ""
            obj = st.update(res, ns, name, sub, lambda old: copy.deepcopy(b), params, ua, "Update",
                            check_rv=check_rv, dry_run=dry_run, require_rv=True)
            return self._send(200, obj)
        if method == "PATCH":
            ct = ctype.split(";")[0].strip()
            if ct == "application/apply-patch+yaml":
                patch = body
                if patch is None and raw:
                    if yaml is None:
                        raise ApiError(400, "BadRequest", "apply body is not JSON (and PyYAML is not installed)")
                    try:
                        patch = yaml.safe_load(raw)
                    except Exception as e:
                        raise ApiError(400, "BadRequest", f"error decoding YAML: {e}")
                obj, code = st.apply(res, ns, name, sub, patch, params, ua, dry_run=dry_run)
                return self._send(code, obj)
            patch = self._json_body(body, raw, allow_list=True)
            if ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if ct == "application/strategic-merge-patch+json" and res.crd:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
                if not isinstance(patch, dict):
                    raise ApiError(400, "BadRequest", "merge patch must be a JSON object")
                compute = lambda old: merge_patch(old, patch)  # noqa: E731
            elif ct == "application/json-patch+json":
                compute = lambda old: json_patch(old, patch)  # noqa: E731
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            check_rv = ""
            if isinstance(patch, dict):
                check_rv = (patch.get("metadata") or {}).get("resourceVersion") or ""
            obj = st.update(res, ns, name, sub, compute, params, ua, "Update",
                            check_rv=check_rv, dry_run=dry_run)
            return self._send(200, obj)
        if method == "DELETE":
            if sub:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            obj = st.delete(res, ns, name, body if isinstance(body, dict) else {}, dry_run=dry_run)
            return self._send(200, obj)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _json_body(self, body, raw, allow_list=False):
        if body is None:
            if raw:
                raise ApiError(400, "BadRequest", "the body of the request could not be decoded as JSON")
            raise ApiError(400, "BadRequest", "the body of the request is empty")
        if not allow_list and not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        return body

    # -- watch --

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _peer_closed(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
        return False

    def _watch(self, res, ns, params):
        st = self.store
        lsel = parse_label_selector(params.get("labelSelector", ""))
        fsel = parse_field_selector(res, params.get("fieldSelector", ""))
        rv_param = params.get("resourceVersion", "")
        bookmarks = truthy(params.get("allowWatchBookmarks", ""))
        send_initial = params.get("sendInitialEvents", "")
        timeout = params.get("timeoutSeconds", "")
        deadline = time.monotonic() + float(timeout) if timeout else None
        if send_initial == "true":
            if params.get("resourceVersionMatch") != "NotOlderThan":
                raise ApiError(422, "Invalid",
                               "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan")
            if not bookmarks:
                raise ApiError(422, "Invalid",
                               "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is set")

        def matches(obj):
            md = obj["metadata"]
            if ns is not None and md.get("namespace", "") != ns:
                return False
            return labels_match(lsel, md.get("labels")) and fields_match(fsel, obj)

        initial = []
        too_old = None
        with st.cond:
            if send_initial == "true" or rv_param in ("", "0") and send_initial != "false":
                cursor = st.rv
                for k in sorted(st.objects[res.key]):
                    o = st.objects[res.key][k]
                    if matches(o):
                        initial.append(o)
            else:
                try:
                    cursor = int(rv_param) if rv_param else st.rv
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version {rv_param!r}")
                if cursor < st.floor:
                    too_old = f"too old resource version: {cursor} ({st.floor})"
            st.watch_seq += 1
            wid = st.watch_seq
            my_close = st.close_epoch
            my_bookmark = st.bookmark_epoch
            st.watches[wid] = {"id": wid, "resource": res.qualified, "apiVersion": res.api_version,
                               "namespace": ns, "labelSelector": params.get("labelSelector", ""),
                               "fieldSelector": params.get("fieldSelector", ""),
                               "resourceVersion": rv_param, "allowWatchBookmarks": bookmarks,
                               "sendInitialEvents": send_initial, "timeoutSeconds": timeout,
                               "userAgent": self.headers.get("User-Agent", ""), "started": time.time()}
        if self._log is not None:
            self._log["code"] = 200
            self._log["watch"] = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()

            def ev(type_, obj):
                self._chunk((json.dumps({"type": type_, "object": obj}) + "\n").encode())

            def bookmark(rv, initial_end=False):
                md = {"resourceVersion": str(rv), "creationTimestamp": None}
                if initial_end:
                    md["annotations"] = {"k8s.io/initial-events-end": "true"}
                ev("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": md})

            if too_old:
                ev("ERROR", status_object(410, "Expired", too_old))
                return
            for o in initial:
                ev("ADDED", o)
            if send_initial == "true":
                bookmark(cursor, initial_end=True)
            last_bookmark = time.monotonic()
            while True:
                out = []
                bm = None
                err = None
                with st.cond:
                    while True:
                        if st.close_epoch != my_close:
                            if st.close_expire:
                                err = f"too old resource version: {cursor} ({st.rv})"
                            break
                        if cursor < st.floor:
                            err = f"too old resource version: {cursor} ({st.floor})"
                            break
                        if st.history and st.history[-1].rv > cursor:
                            break
                        now = time.monotonic()
                        if deadline is not None and now >= deadline:
                            break
                        if bookmarks and (st.bookmark_epoch != my_bookmark
                                          or (st.bookmark_interval > 0 and now - last_bookmark >= st.bookmark_interval)):
                            break
                        waits = [1.0]
                        if deadline is not None:
                            waits.append(deadline - now)
                        if bookmarks and st.bookmark_interval > 0:
                            waits.append(st.bookmark_interval - (now - last_bookmark))
                        st.cond.wait(max(0.01, min(waits)))
                        if self._peer_closed():
                            return
                    if err is None:
                        for e in reversed(st.history):
                            if e.rv <= cursor:
                                break
                            if e.key == res.key:
                                out.append(e)
                        out.reverse()
                        cursor = max(cursor, st.history[-1].rv if st.history else cursor)
                        now = time.monotonic()
                        if bookmarks and (st.bookmark_epoch != my_bookmark
                                          or (st.bookmark_interval > 0 and now - last_bookmark >= st.bookmark_interval)):
                            my_bookmark = st.bookmark_epoch
                            cursor = max(cursor, st.rv)
                            bm = cursor
                            last_bookmark = now
                closed = st.close_epoch != my_close
                if err is not None:
                    ev("ERROR", status_object(410, "Expired", err))
                    return
                for e in out:
                    if e.type == "MODIFIED":
                        was, now_m = matches(e.old), matches(e.obj)
                        if was and now_m:
                            ev("MODIFIED", e.obj)
                        elif now_m:
                            ev("ADDED", e.obj)
                        elif was:
                            ev("DELETED", e.obj)
                    elif matches(e.obj):
                        ev(e.type, e.obj)
                if bm is not None:
                    bookmark(bm)
                if closed or (deadline is not None and time.monotonic() >= deadline):
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            with st.cond:
                st.watches.pop(wid, None)
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True

    # -- control API --

    def _control(self, method, path, params, body, raw):
        st = self.store
        op = path[len("/_fake/"):].rstrip("/")
        if op == "requests":
            if method == "DELETE":
                with st.cond:
                    st.requests = []
                return self._send(200, {"cleared": True})
            since = int(params.get("since") or 0)
            prefix = params.get("path", "")
            m = params.get("method", "")
            with st.cond:
                out = [r for r in st.requests if r["seq"] > since and r["path"].startswith(prefix)
                       and (not m or r["method"] == m)]
            return self._send(200, out)
        if op == "compact" and method == "POST":
            with st.cond:
                upto = int(params.get("resourceVersion") or st.rv)
                st.history = [e for e in st.history if e.rv > upto]
                st.floor = max(st.floor, upto)
                st.cond.notify_all()
                return self._send(200, {"resourceVersion": str(st.rv), "compactedTo": str(st.floor)})
        if op == "reset" and method == "POST":
            with st.cond:
                st.close_expire = False
                st.close_epoch += 1
                for r in st.resources:
                    st.objects[r.key] = {}
                st.managed = {}
                st.history = []
                st.floor = st.rv
                st.requests = []
                st.failures = []
                st.cond.notify_all()
            n = sum(st.load_dir(d) for d in st.fixture_dirs)
            return self._send(200, {"resourceVersion": str(st.rv), "objects": n})
        if op == "bookmark" and method == "POST":
            with st.cond:
                st.bookmark_epoch += 1
                st.cond.notify_all()
            return self._send(200, {"resourceVersion": str(st.rv)})
        if op == "close-watches" and method == "POST":
            with st.cond:
                st.close_expire = truthy(params.get("expire", ""))
                st.close_epoch += 1
                n = len(st.watches)
                st.cond.notify_all()
            return self._send(200, {"closed": n})
        if op == "watches":
            with st.cond:
                return self._send(200, list(st.watches.values()))
        if op == "state":
            with st.cond:
                return self._send(200, {
                    "resourceVersion": str(st.rv), "compactedTo": str(st.floor),
                    "historySize": st.history_size, "historyLength": len(st.history),
                    "bookmarkInterval": st.bookmark_interval, "watches": len(st.watches),
                    "objects": {r.qualified: len(st.objects[r.key]) for r in st.resources}})
        if op == "history":
            with st.cond:
                return self._send(200, [{"resourceVersion": str(e.rv), "type": e.type,
                                         "resource": e.key[1] + ("." + e.key[0] if e.key[0] else ""),
                                         "namespace": e.obj["metadata"].get("namespace", ""),
                                         "name": e.obj["metadata"]["name"]} for e in st.history])
        if op == "config" and method == "POST":
            b = body or {}
            with st.cond:
                if "historySize" in b:
                    st.history_size = int(b["historySize"])
                    if st.history_size >= 0 and len(st.history) > st.history_size:
                        drop = len(st.history) - st.history_size
                        st.floor = st.history[drop - 1].rv
                        del st.history[:drop]
                if "bookmarkInterval" in b:
                    st.bookmark_interval = float(b["bookmarkInterval"])
                st.cond.notify_all()
            return self._send(200, {"historySize": st.history_size, "bookmarkInterval": st.bookmark_interval})
        if op == "fail" and method in ("POST", "DELETE"):
            with st.cond:
                if method == "DELETE":
                    st.failures = []
                else:
                    items = body if isinstance(body, list) else [body or {}]
                    for f in items:
                        f = dict(f)
                        f.setdefault("count", 1)
                        st.failures.append(f)
                return self._send(200, st.failures)
        if op == "objects" and method == "POST":
            if isinstance(body, list):
                items = body
            elif isinstance(body, dict) and body.get("kind", "").endswith("List") and "items" in body:
                items = body["items"]
            elif isinstance(body, dict):
                items = [body]
            else:
                raise ApiError(400, "BadRequest", "POST /_fake/objects takes an object, a list or a List")
            return self._send(200, [st.upsert_raw(o) for o in items])
        if op == "objects" and method == "DELETE":
            b = body or {}
            res = st.resource_for(b)
            md = b.get("metadata") or {}
            return self._send(200, st.delete_raw(res, md.get("namespace", ""), md.get("name", "")))
        raise ApiError(404, "NotFound", f"no control endpoint {method} {path}")


def first_param(params, name):
    return params.get(name, "")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", nargs="?", type=int, default=0, help="port (0: a free one)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--objects", action="append", default=[], help="directory of JSON (or YAML) objects; repeatable")
    ap.add_argument("--history-size", type=int, default=10000,
                    help="watch events kept for resuming watches (older resourceVersions get 410 Expired)")
    ap.add_argument("--bookmark-interval", type=float, default=5.0,
                    help="seconds between BOOKMARK events on watches that allow them (0: only on request)")
    ap.add_argument("--prometheus-operator-crds", action="store_true",
                    help="also serve monitoring.coreos.com/v1 servicemonitors, podmonitors, prometheusrules")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    a = ap.parse_args(argv)
    resources = list(RESOURCES) + (PROMETHEUS_OPERATOR_RESOURCES if a.prometheus_operator_crds else [])
    st = Store(resources, a.history_size, a.bookmark_interval)
    st.fixture_dirs = a.objects
    for d in a.objects:
        st.load_dir(d)
    Handler.store = st
    Handler.verbose = a.verbose
    srv = Server((a.host, a.port), Handler)
    print(f"LISTENING {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
