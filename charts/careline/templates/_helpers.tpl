{{/* Names, labels and the settings several templates share. */}}

{{- define "careline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-careline, or the release name alone when it already contains the chart name. */}}
{{- define "careline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "careline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "careline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: careline
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "router"). */}}
{{- define "careline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "careline.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's resources: (dict "ctx" $ "component" "router"). */}}
{{- define "careline.componentLabels" -}}
{{ include "careline.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "careline.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The gRPC services, in one place: binary and listen-address variable of each, the key of its
block in values.yaml (`values`, when it is not the component name), the template of its own
environment variables (`env`), and for the services with a web listener the variable of its
HTTP address (`httpEnv`; values: httpPort and ingress). A new service is one line here plus
its block in values.yaml (same keys as router).
*/}}
{{- define "careline.grpcServices" -}}
router: { binary: careline-router, addrEnv: CARELINE_ROUTER_ADDR }
presence: { binary: careline-presence, addrEnv: CARELINE_PRESENCE_ADDR }
notifications: { binary: careline-notifications, addrEnv: CARELINE_NOTIFICATIONS_ADDR }
email-intake: { binary: careline-email-intake, addrEnv: CARELINE_EMAIL_ADDR, values: emailIntake, env: careline.emailIntake.env }
chat-gateway: { binary: careline-chat-gateway, addrEnv: CARELINE_CHAT_ADDR, httpEnv: CARELINE_CHAT_HTTP_ADDR, values: chatGateway, env: careline.chatGateway.env }
survey-dispatcher: { binary: careline-survey-dispatcher, addrEnv: CARELINE_SURVEY_ADDR, httpEnv: CARELINE_SURVEY_HTTP_ADDR, values: surveyDispatcher, env: careline.surveyDispatcher.env }
console: { binary: careline-console, addrEnv: CARELINE_CONSOLE_ADDR, httpEnv: CARELINE_CONSOLE_HTTP_ADDR, env: careline.console.env }
campaigns: { binary: careline-campaigns, addrEnv: CARELINE_CAMPAIGNS_ADDR, env: careline.campaigns.env }
{{- end -}}

{{/* The gRPC URL of this release's service `name` (router, email-intake): (dict "ctx" $ "name" "router"). */}}
{{- define "careline.grpcUrl" -}}
{{- $svc := index (include "careline.grpcServices" .ctx | fromYaml) .name -}}
{{- $values := index .ctx.Values (default .name $svc.values) -}}
{{- printf "%s://%s-%s:%d" (ternary "https" "http" .ctx.Values.tls.server.enabled) (include "careline.fullname" .ctx) .name (int $values.grpcPort) -}}
{{- end -}}

{{/*
A router API key Secret as an environment variable, when one is named:
(dict "env" "CARELINE_CHAT_ROUTER_API_KEYS" "secret" .Values.chatGateway.routerApiKeys.existingSecret).
*/}}
{{- define "careline.routerKeysEnv" -}}
{{- with .secret.name }}
# tenant=key,... : never in values or the ConfigMap.
- name: {{ $.env }}
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.secret.key }}
{{- end }}
{{- end -}}

{{/*
A random secret the chart generates (dict "ctx" $ "name" "<Secret name>" "key" "<key>"), base64:
the value already in the cluster's Secret when there is one (upgrades keep it, so replicas and
restarts agree), else 40 random letters and digits (as `careline key new` makes).
*/}}
{{- define "careline.generatedSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum 40 | b64enc -}}
{{- end -}}
{{- end -}}

{{/* The Redis URL the chart writes into its Secret (unused with redis.existingSecret). */}}
{{- define "careline.redisUrl" -}}
{{- if .Values.redis.bundled.enabled -}}
{{- printf "redis://%s-redis:6379/" (include "careline.fullname" .) -}}
{{- else if .Values.redis.url -}}
{{- .Values.redis.url -}}
{{- else -}}
{{- join "," .Values.redis.cluster.nodes -}}
{{- end -}}
{{- end -}}

{{/* The NATS URL the chart writes into its Secret (unused with nats.existingSecret). */}}
{{- define "careline.natsUrl" -}}
{{- if .Values.nats.bundled.enabled -}}
{{- printf "nats://%s-nats:4222" (include "careline.fullname" .) -}}
{{- else -}}
{{- .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{/* JetStream replicas: the value, else 1 on the bundled single node and 3 on a cluster. */}}
{{- define "careline.natsReplicas" -}}
{{- if not (kindIs "invalid" .Values.nats.streamReplicas) -}}
{{- .Values.nats.streamReplicas -}}
{{- else if .Values.nats.bundled.enabled -}}
1
{{- else -}}
3
{{- end -}}
{{- end -}}

{{/* Pod termination: preStop sleep + the services' drain + a margin for the last flush. */}}
{{- define "careline.terminationGracePeriod" -}}
{{- add .Values.config.preStopSleepSecs .Values.config.shutdownGraceSecs 10 -}}
{{- end -}}

{{/*
Checks the rules between values that values.schema.json cannot phrase clearly. Each message
names the value to change.
*/}}
{{- define "careline.validate" -}}
{{- $redis := 0 -}}
{{- if .Values.redis.bundled.enabled }}{{ $redis = add1 $redis }}{{ end -}}
{{- if .Values.redis.url }}{{ $redis = add1 $redis }}{{ end -}}
{{- if .Values.redis.cluster.nodes }}{{ $redis = add1 $redis }}{{ end -}}
{{- if .Values.redis.existingSecret.name }}{{ $redis = add1 $redis }}{{ end -}}
{{- if ne $redis 1 -}}
{{- fail (printf "redis: set exactly one of redis.url, redis.cluster.nodes, redis.existingSecret.name or redis.bundled.enabled=true (%d are set)" $redis) -}}
{{- end -}}
{{- $nats := 0 -}}
{{- if .Values.nats.bundled.enabled }}{{ $nats = add1 $nats }}{{ end -}}
{{- if .Values.nats.url }}{{ $nats = add1 $nats }}{{ end -}}
{{- if .Values.nats.existingSecret.name }}{{ $nats = add1 $nats }}{{ end -}}
{{- if ne $nats 1 -}}
{{- fail (printf "nats: set exactly one of nats.url, nats.existingSecret.name or nats.bundled.enabled=true (%d are set)" $nats) -}}
{{- end -}}
{{- if and .Values.emailIntake.enabled (not .Values.router.enabled) -}}
{{- fail "emailIntake.enabled: email-intake creates interactions on this release's router; set router.enabled=true or emailIntake.enabled=false" -}}
{{- end -}}
{{- if and .Values.chatGateway.enabled (not .Values.router.enabled) -}}
{{- fail "chatGateway.enabled: chat-gateway creates chat interactions on this release's router; set router.enabled=true or chatGateway.enabled=false" -}}
{{- end -}}
{{- if and .Values.console.enabled (not .Values.router.enabled) -}}
{{- fail "console.enabled: the console's floor view reads queue statistics from this release's router; set router.enabled=true or console.enabled=false" -}}
{{- end -}}
{{- if and .Values.campaigns.enabled (not .Values.router.enabled) -}}
{{- fail "campaigns.enabled: campaigns creates its outbound interactions on this release's router; set router.enabled=true or campaigns.enabled=false" -}}
{{- end -}}
{{- range $name, $svc := include "careline.grpcServices" . | fromYaml -}}
{{- $key := default $name $svc.values -}}
{{- $values := index $.Values $key -}}
{{- if and $svc.httpEnv $values.enabled $values.ingress.enabled (not $values.ingress.host) -}}
{{- fail (printf "%s.ingress.host: %s.ingress.enabled=true needs the host name its users open (a DNS name, e.g. %s.example.org)" $key $key $name) -}}
{{- end -}}
{{- end -}}
{{- if .Values.tls.server.enabled -}}
{{- if not .Values.tls.server.existingSecret -}}
{{- fail "tls.server.existingSecret: tls.server.enabled=true needs the Secret holding the services' certificate and key" -}}
{{- end -}}
{{- if not .Values.tls.caSecret.name -}}
{{- fail "tls.caSecret.name: tls.server.enabled=true needs the Secret holding the CA bundle (the services verify each other with it)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tls.server.requireClientCertificates (not .Values.tls.server.enabled) -}}
{{- fail "tls.server.requireClientCertificates: client certificates need TLS; set tls.server.enabled=true" -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- if not .Values.tls.caSecret.name -}}
{{- fail "tls.caSecret.name: tls.enabled=true needs the Secret holding the CA bundle" -}}
{{- end -}}
{{- if or .Values.redis.bundled.enabled .Values.nats.bundled.enabled -}}
{{- fail "tls.enabled: the bundled Redis and NATS serve plain TCP; use TLS with external stores (redis.bundled.enabled=false, nats.bundled.enabled=false)" -}}
{{- end -}}
{{- if and .Values.redis.url (not (regexMatch "^rediss(\\+cluster)?://" .Values.redis.url)) -}}
{{- fail (printf "redis.url: tls.enabled=true needs a rediss:// or rediss+cluster:// URL, got %s" (regexReplaceAll "//[^@/]*@" .Values.redis.url "//<credentials>@")) -}}
{{- end -}}
{{- range .Values.redis.cluster.nodes -}}
{{- if not (hasPrefix "rediss://" .) -}}
{{- fail (printf "redis.cluster.nodes: tls.enabled=true needs rediss:// node URLs, got %s" (regexReplaceAll "//[^@/]*@" . "//<credentials>@")) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.nats.url (not (hasPrefix "tls://" .Values.nats.url)) -}}
{{- fail (printf "nats.url: tls.enabled=true needs tls:// URLs, got %s" (regexReplaceAll "//[^@/]*@" .Values.nats.url "//<credentials>@")) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The store URLs as env vars, from the chart's Secret or the user's. */}}
{{- define "careline.storeEnv" -}}
- name: CARELINE_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.redis.existingSecret.name }}
      name: {{ .Values.redis.existingSecret.name }}
      key: {{ .Values.redis.existingSecret.key }}
      {{- else }}
      name: {{ include "careline.fullname" . }}-stores
      key: redis-url
      {{- end }}
{{ include "careline.natsEnv" . }}
{{- end -}}

{{- define "careline.natsEnv" -}}
- name: CARELINE_NATS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.nats.existingSecret.name }}
      name: {{ .Values.nats.existingSecret.name }}
      key: {{ .Values.nats.existingSecret.key }}
      {{- else }}
      name: {{ include "careline.fullname" . }}-stores
      key: nats-url
      {{- end }}
{{ include "careline.tlsEnv" . }}
{{- end -}}

{{/* The TLS files as the services read them (crates/careline-kit/src/tls.rs). */}}
{{- define "careline.tlsEnv" -}}
{{- if or .Values.tls.enabled .Values.tls.server.enabled }}
- name: CARELINE_TLS_CA
  value: /etc/careline/tls/ca.crt
{{- end }}
{{- if .Values.tls.server.enabled }}
- name: CARELINE_TLS_CERT
  value: /etc/careline/tls-server/tls.crt
- name: CARELINE_TLS_KEY
  value: /etc/careline/tls-server/tls.key
{{- if .Values.tls.server.requireClientCertificates }}
- name: CARELINE_TLS_CLIENT_CA
  value: /etc/careline/tls/ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* TLS volumes (the CA bundle; the services' certificate) and their mounts. */}}
{{- define "careline.tlsVolume" -}}
{{- if or .Values.tls.enabled .Values.tls.server.enabled }}
- name: tls-ca
  secret:
    secretName: {{ .Values.tls.caSecret.name }}
    items:
      - key: {{ .Values.tls.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if .Values.tls.server.enabled }}
- name: tls-server
  secret:
    secretName: {{ .Values.tls.server.existingSecret }}
    items:
      - key: {{ .Values.tls.server.certKey }}
        path: tls.crt
      - key: {{ .Values.tls.server.keyKey }}
        path: tls.key
{{- end }}
{{- end -}}

{{- define "careline.tlsMount" -}}
{{- if or .Values.tls.enabled .Values.tls.server.enabled }}
- name: tls-ca
  mountPath: /etc/careline/tls
  readOnly: true
{{- end }}
{{- if .Values.tls.server.enabled }}
- name: tls-server
  mountPath: /etc/careline/tls-server
  readOnly: true
{{- end }}
{{- end -}}

{{/*
The readiness and startup probe of a service listening on gRPC port `port`: gRPC health, or
with tls.server.enabled (kubelet gRPC probes cannot speak TLS) HTTPS /readyz on the metrics
port, which answers 200 exactly while the gRPC health says SERVING.
*/}}
{{- define "careline.readinessCheck" -}}
{{- if .ctx.Values.tls.server.enabled -}}
httpGet: { path: /readyz, port: metrics, scheme: HTTPS }
{{- else -}}
grpc: { port: {{ .port }} }
{{- end -}}
{{- end -}}

{{/* The scheme of the metrics port, when not plain HTTP. */}}
{{- define "careline.metricsScheme" -}}
{{- if .Values.tls.server.enabled }}, scheme: HTTPS{{ end -}}
{{- end -}}

{{/* Spread one component's pods over zones, then nodes. */}}
{{- define "careline.topologySpread" -}}
{{- if .ctx.Values.topologySpread }}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "careline.selectorLabels" $ | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* name: value map as an env list. */}}
{{- define "careline.envMap" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
