{{/* Names: <release>-kairn (or just <release> when it already contains "kairn"), truncated to 63. */}}
{{- define "kairn.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "kairn" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-kairn" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kairn.name" -}}{{ .Chart.Name }}{{- end -}}

{{- define "kairn.labels" -}}
app.kubernetes.io/name: {{ include "kairn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* selector labels of one component: include "kairn.selector" (list . "collector") */}}
{{- define "kairn.selector" -}}
app.kubernetes.io/name: {{ include "kairn.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "kairn.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The collector's ServiceAccount (the only identity with API permissions). */}}
{{- define "kairn.collectorServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-collector" (include "kairn.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount of merge, analyze and serve: no RBAC, no API token mounted. */}}
{{- define "kairn.jobsServiceAccount" -}}
{{- printf "%s-jobs" (include "kairn.fullname" .) -}}
{{- end -}}

{{- define "kairn.archive" -}}
{{- required "archive.url is required (s3://bucket/prefix)" .Values.archive.url -}}
{{- end -}}

{{- define "kairn.s3Secret" -}}
{{- if .Values.s3.create -}}
{{- printf "%s-s3" (include "kairn.fullname" .) -}}
{{- else -}}
{{- .Values.s3.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* S3 credentials and endpoint for every kairn container: envFrom the S3 Secret. */}}
{{- define "kairn.s3EnvFrom" -}}
{{- if or .Values.s3.existingSecret .Values.s3.create }}
envFrom:
  - secretRef:
      name: {{ include "kairn.s3Secret" . }}
{{- end }}
{{- end -}}

{{- define "kairn.webhookService" -}}
{{- printf "%s-collector" (include "kairn.fullname" .) -}}
{{- end -}}

{{/* Secret holding the webhook's tls.crt / tls.key (and ca.crt). */}}
{{- define "kairn.webhookTLSSecret" -}}
{{- $tls := .Values.collector.webhook.tls -}}
{{- if eq $tls.source "secret" -}}
{{- required "collector.webhook.tls.secretName is required with tls.source=secret" $tls.secretName -}}
{{- else -}}
{{- default (printf "%s-webhook-tls" (include "kairn.fullname" .)) $tls.secretName -}}
{{- end -}}
{{- end -}}

{{- define "kairn.webhookTokenSecret" -}}
{{- default (printf "%s-webhook-token" (include "kairn.fullname" .)) .Values.collector.webhook.auth.token.secretName -}}
{{- end -}}

{{/* DNS names the webhook certificate is valid for. */}}
{{- define "kairn.webhookDNSNames" -}}
{{- $svc := include "kairn.webhookService" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) -}}
{{- range .Values.collector.webhook.tls.extraSANs -}}
{{- if not (regexMatch "^[0-9.:]+$" .) -}}{{- $names = append $names . -}}{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{- define "kairn.webhookIPs" -}}
{{- $ips := list -}}
{{- with .Values.collector.service.clusterIP -}}{{- $ips = append $ips . -}}{{- end -}}
{{- range .Values.collector.webhook.tls.extraSANs -}}
{{- if regexMatch "^[0-9.:]+$" . -}}{{- $ips = append $ips . -}}{{- end -}}
{{- end -}}
{{- toJson $ips -}}
{{- end -}}

{{/* Restricted Pod Security Standard, for every pod of the chart. */}}
{{- define "kairn.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "kairn.securityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}

{{- define "kairn.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
