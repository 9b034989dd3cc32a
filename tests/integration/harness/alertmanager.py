"""Prometheus Alertmanager (Debian package prometheus-alertmanager, binary
/usr/bin/prometheus-alertmanager) routing every alert to one webhook.

    am = Alertmanager(workdir, receiver_url).start()
    am.url                 # http://127.0.0.1:PORT
    am.alerts()            # GET /api/v2/alerts -> list
    am.post_alerts([...])  # POST /api/v2/alerts

Route: group_by ["..."] (every alert its own group) unless given, group_wait 0s,
group_interval 1s, repeat_interval 4h, send_resolved true; the webhook URL is
receiver_url + webhook_path ("/alertmanager" by default).
"""

import json
import os

from .proc import ManagedProcess
from .util import HarnessError, free_port, http_request

BINARY = "prometheus-alertmanager"


class Alertmanager(ManagedProcess):
    kind = "alertmanager"
    expect = "alertmanager"
    start_timeout = 20.0

    def __init__(self, workdir, receiver_url, netns=None, port=None, group_by=("...",),
                 webhook_path="/alertmanager", repeat_interval="4h"):
        super().__init__(workdir, netns)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.config_path = os.path.join(workdir, "alertmanager.yml")
        self.storage = os.path.join(workdir, "data")
        os.makedirs(self.storage, exist_ok=True)
        self.webhook_url = receiver_url.rstrip("/") + webhook_path
        cfg = {
            "route": {
                "receiver": "test",
                "group_by": list(group_by),
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": repeat_interval,
            },
            "receivers": [{
                "name": "test",
                "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}],
            }],
        }
        # JSON is valid YAML: no quoting pitfalls
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)

    def _argv(self):
        return [BINARY, "--config.file=" + self.config_path,
                "--storage.path=" + self.storage,
                "--web.listen-address=%s:%d" % (self.host, self.port),
                "--cluster.listen-address=", "--log.level=debug"]

    def _ready(self):
        status, _, _ = self._req("/-/ready", timeout=1.0)
        return status == 200

    def close(self):
        self.stop(timeout=5)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def _req(self, path, method="GET", body=None, timeout=3.0):
        headers = {"Content-Type": "application/json"} if body is not None else None
        return http_request(self.host, self.port, path, method, headers=headers, body=body,
                            timeout=timeout, netns=self.netns)

    def alerts(self):
        status, _, body = self._req("/api/v2/alerts")
        if status != 200:
            raise HarnessError("GET /api/v2/alerts -> %d %r" % (status, body[:200]))
        return json.loads(body)

    def post_alerts(self, alerts):
        status, _, body = self._req("/api/v2/alerts", "POST", json.dumps(alerts).encode())
        if status != 200:
            raise HarnessError("POST /api/v2/alerts -> %d %r" % (status, body[:300]))
        return status
