{{/*
What chat-gateway, survey-dispatcher and console need beyond the shared service template
(services.yaml; their HTTP listener comes from httpEnv in careline.grpcServices): the
settings each one's configuration reads (services/<name>/src/config.rs), the router,
email-intake and campaigns they call, and their keys from Secrets.
*/}}

{{/* chat-gateway (services/chat-gateway/src/config.rs). */}}
{{- define "careline.chatGateway.env" -}}
{{- $values := .Values.chatGateway }}
- name: CARELINE_ROUTER_URL
  value: {{ include "careline.grpcUrl" (dict "ctx" . "name" "router") | quote }}
{{- if .Values.emailIntake.enabled }}
# The contact form (outside opening hours) becomes an email through IngestEmail.
- name: CARELINE_EMAIL_INTAKE_URL
  value: {{ include "careline.grpcUrl" (dict "ctx" . "name" "email-intake") | quote }}
{{- end }}
{{- if .Values.campaigns.enabled }}
# A closed widget offers a call-back: RequestCallback on campaigns.
- name: CARELINE_CAMPAIGNS_URL
  value: {{ include "careline.grpcUrl" (dict "ctx" . "name" "campaigns") | quote }}
{{- end }}
- name: CARELINE_CHAT_RESUME_GRACE_SECS
  value: {{ int $values.resumeGraceSecs | quote }}
{{- include "careline.routerKeysEnv" (dict "env" "CARELINE_CHAT_ROUTER_API_KEYS" "secret" $values.routerApiKeys.existingSecret) }}
{{- end -}}

{{/* Where members open survey links: surveyDispatcher.publicUrl, else the Ingress host. */}}
{{- define "careline.surveyDispatcher.publicUrl" -}}
{{- $values := .Values.surveyDispatcher }}
{{- if $values.publicUrl -}}
{{- trimSuffix "/" $values.publicUrl -}}
{{- else if $values.ingress.enabled -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty $values.ingress.tls.secretName))) $values.ingress.host -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the survey link keys: the user's, else the one the chart generates. */}}
{{- define "careline.surveyDispatcher.linkKeysSecret" -}}
{{- $secret := .Values.surveyDispatcher.linkKeys.existingSecret }}
{{- if $secret.name -}}
{ name: {{ $secret.name }}, key: {{ $secret.key }} }
{{- else -}}
{ name: {{ include "careline.fullname" . }}-survey-link-keys, key: link-keys }
{{- end -}}
{{- end -}}

{{/* survey-dispatcher (services/survey-dispatcher/src/config.rs). */}}
{{- define "careline.surveyDispatcher.env" -}}
{{- $values := .Values.surveyDispatcher }}
{{- with include "careline.surveyDispatcher.publicUrl" . }}
- name: CARELINE_SURVEY_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
- name: CARELINE_SURVEY_CONCURRENCY
  value: {{ int $values.concurrency | quote }}
# Keys that sign survey links: the same on every replica (any replica checks any link).
- name: CARELINE_SURVEY_LINK_KEYS
  valueFrom:
    secretKeyRef: {{ include "careline.surveyDispatcher.linkKeysSecret" . }}
{{- end -}}

{{/* The Secret holding the floor view's session secret: the user's, else the chart's. */}}
{{- define "careline.console.sessionSecret" -}}
{{- $secret := .Values.console.sessionSecret.existingSecret }}
{{- if $secret.name -}}
{ name: {{ $secret.name }}, key: {{ $secret.key }} }
{{- else -}}
{ name: {{ include "careline.fullname" . }}-console-session, key: session-secret }
{{- end -}}
{{- end -}}

{{/* Whether the session cookie is marked Secure: console.secureCookie, else served over HTTPS. */}}
{{- define "careline.console.secureCookie" -}}
{{- $values := .Values.console }}
{{- if not (kindIs "invalid" $values.secureCookie) -}}
{{- $values.secureCookie -}}
{{- else -}}
{{- or .Values.tls.server.enabled (and $values.ingress.enabled (not (empty $values.ingress.tls.secretName))) -}}
{{- end -}}
{{- end -}}

{{/* console (services/console/src/config.rs). */}}
{{- define "careline.console.env" -}}
{{- $values := .Values.console }}
- name: CARELINE_ROUTER_URL
  value: {{ include "careline.grpcUrl" (dict "ctx" . "name" "router") | quote }}
{{- include "careline.routerKeysEnv" (dict "env" "CARELINE_CONSOLE_ROUTER_API_KEYS" "secret" $values.routerApiKeys.existingSecret) }}
# Signs floor view logins: one secret for every replica, so a login works on whichever
# replica the next request reaches (without it each process picks its own).
- name: CARELINE_CONSOLE_SESSION_SECRET
  valueFrom:
    secretKeyRef: {{ include "careline.console.sessionSecret" . }}
{{- with $values.operatorToken.existingSecret.name }}
# Opens the operator view across tenants; a platform credential, never a tenant key.
- name: CARELINE_CONSOLE_OPERATOR_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $values.operatorToken.existingSecret.key }}
{{- end }}
- name: CARELINE_CONSOLE_SESSION_SECS
  value: {{ int $values.sessionSecs | quote }}
- name: CARELINE_CONSOLE_SECURE_COOKIE
  value: {{ include "careline.console.secureCookie" . | quote }}
- name: CARELINE_KPI_SHORT_ABANDON_SECS
  value: {{ int $values.kpi.shortAbandonSecs | quote }}
- name: CARELINE_KPI_FCR_DAYS
  value: {{ int $values.kpi.fcrDays | quote }}
{{- end -}}
