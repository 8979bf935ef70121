{{/*
What campaigns needs beyond the shared service template (services.yaml): the router it
creates outbound interactions on and the key it presents there per tenant
(services/campaigns/src/config.rs).
*/}}
{{- define "careline.campaigns.env" -}}
- name: CARELINE_ROUTER_URL
  value: {{ include "careline.grpcUrl" (dict "ctx" . "name" "router") | quote }}
{{- include "careline.routerKeysEnv" (dict "env" "CARELINE_CAMPAIGNS_ROUTER_API_KEYS" "secret" .Values.campaigns.routerApiKeys.existingSecret) }}
{{- end -}}
