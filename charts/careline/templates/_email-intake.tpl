{{/*
What email-intake needs beyond the shared service template (services.yaml): its SMTP
listener, the router it creates interactions on and the key it presents there
(services/email-intake/src/config.rs), and the STARTTLS certificate from a Secret.
*/}}

{{/* Where the STARTTLS certificate and key are mounted. */}}
{{- define "careline.emailIntake.tlsDir" -}}
/etc/careline/smtp-tls
{{- end -}}

{{- define "careline.emailIntake.env" -}}
{{- $values := .Values.emailIntake }}
- name: CARELINE_SMTP_ADDR
  value: {{ printf "0.0.0.0:%d" (int $values.smtp.port) | quote }}
{{- with $values.smtp.hostname }}
- name: CARELINE_SMTP_HOSTNAME
  value: {{ . | quote }}
{{- end }}
- name: CARELINE_EMAIL_MAX_MESSAGE_BYTES
  value: {{ int64 $values.maxMessageBytes | quote }}
- name: CARELINE_ROUTER_URL
  value: {{ include "careline.grpcUrl" (dict "ctx" . "name" "router") | quote }}
{{- include "careline.routerKeysEnv" (dict "env" "CARELINE_EMAIL_ROUTER_API_KEYS" "secret" $values.routerApiKeys.existingSecret) }}
{{- if $values.smtp.tls.existingSecret }}
- name: CARELINE_SMTP_TLS_CERT
  value: {{ printf "%s/tls.crt" (include "careline.emailIntake.tlsDir" .) | quote }}
- name: CARELINE_SMTP_TLS_KEY
  value: {{ printf "%s/tls.key" (include "careline.emailIntake.tlsDir" .) | quote }}
{{- end }}
{{- end -}}

{{- define "careline.emailIntake.tlsVolume" -}}
{{- $tls := .Values.emailIntake.smtp.tls }}
{{- if $tls.existingSecret }}
- name: smtp-tls
  secret:
    secretName: {{ $tls.existingSecret }}
    # The private key: readable by the pod's group (fsGroup) only.
    defaultMode: 0440
    items:
      - { key: {{ $tls.certKey }}, path: tls.crt }
      - { key: {{ $tls.keyKey }}, path: tls.key }
{{- end }}
{{- end -}}

{{- define "careline.emailIntake.tlsMount" -}}
{{- if .Values.emailIntake.smtp.tls.existingSecret }}
- name: smtp-tls
  mountPath: {{ include "careline.emailIntake.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}
