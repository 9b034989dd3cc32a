"""Prometheus (Debian package prometheus, binary /usr/bin/prometheus) scraping a list of targets every second.

    prom = Prometheus(workdir, ["127.0.0.1:9110", ...]).start()
    prom.url                   # http://127.0.0.1:PORT
    prom.query("up")           # the instant vector: [{"metric": {...}, "value": [t, "1"]}, ...]

One job, "healthd", scrape_interval and scrape_timeout 1s; the TSDB in the work directory.
"""

import json
import os
import urllib.parse

from .proc import ManagedProcess
from .util import HarnessError, free_port, http_request

BINARY = "prometheus"


class Prometheus(ManagedProcess):
    kind = "prometheus"
    expect = "prometheus"
    start_timeout = 30.0

    def __init__(self, workdir, targets, netns=None, port=None, job="healthd"):
        super().__init__(workdir, netns)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.config_path = os.path.join(workdir, "prometheus.yml")
        self.storage = os.path.join(workdir, "data")
        os.makedirs(self.storage, exist_ok=True)
        cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
               "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}]}
        with open(self.config_path, "w") as f:  # JSON is valid YAML
            json.dump(cfg, f, indent=2)

    def _argv(self):
        return [BINARY, "--config.file=" + self.config_path, "--storage.tsdb.path=" + self.storage,
                "--web.listen-address=%s:%d" % (self.host, self.port), "--log.level=warn"]

    def _ready(self):
        status, _, _ = http_request(self.host, self.port, "/-/ready", timeout=1.0, netns=self.netns)
        return status == 200

    def close(self):
        self.stop(timeout=10)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def query(self, promql):
        status, _, body = http_request(self.host, self.port, "/api/v1/query?query=" + urllib.parse.quote(promql),
                                       timeout=5.0, netns=self.netns)
        if status != 200:
            raise HarnessError("GET /api/v1/query %s -> %d %r" % (promql, status, body[:200]))
        return json.loads(body)["data"]["result"]
