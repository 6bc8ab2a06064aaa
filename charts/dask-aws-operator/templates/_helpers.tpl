{{/* The chart's name, truncated to a DNS label. */}}
{{- define "dask-aws-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: <release>-<chart> unless the release name already says it. */}}
{{- define "dask-aws-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dask-aws-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dask-aws-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dask-aws-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dask-aws-operator.labels" -}}
helm.sh/chart: {{ include "dask-aws-operator.chart" . }}
{{ include "dask-aws-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dask-aws
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dask-aws-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dask-aws-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dask-aws-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's rules on the resources of the namespaces it watches. The same rules make
the ClusterRole (every namespace) or one Role per watched namespace.
*/}}
{{- define "dask-aws-operator.rules" -}}
# kopf: list and watch DaskAwsClusters; patch them for the finalizer and the progress and
# diff-base annotations; the watch-health probe lists them; idle timeout deletes them, and
# so does a DaskAwsJob that is done with the cluster it made. create: a DaskAwsJob's own
# cluster (<job>-<id>), made from its spec.cluster.spec.
- apiGroups: ["daskaws.io"]
  resources: ["daskawsclusters"]
  verbs: ["list", "watch", "patch", "delete", "create"]
# kopf: status is a subresource; the status the handlers return is patched there.
- apiGroups: ["daskaws.io"]
  resources: ["daskawsclusters/status"]
  verbs: ["patch"]
# The connection Secret's ownerReference has blockOwnerDeletion, which API servers with
# the OwnerReferencesPermissionEnforcement admission plugin (OpenShift) allow only to
# those who may update the owner's finalizers.
- apiGroups: ["daskaws.io"]
  resources: ["daskawsclusters/finalizers"]
  verbs: ["update"]
# kopf: list and watch DaskAwsJobs; patch them for the finalizer and the progress
# annotations; ttlSecondsAfterFinished deletes them. Never created or updated.
- apiGroups: ["daskaws.io"]
  resources: ["daskawsjobs"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: ["daskaws.io"]
  resources: ["daskawsjobs/status"]
  verbs: ["patch"]
# A job's own cluster has an ownerReference to the job with blockOwnerDeletion: as for the
# connection Secret, OwnerReferencesPermissionEnforcement asks for the owner's finalizers.
- apiGroups: ["daskaws.io"]
  resources: ["daskawsjobs/finalizers"]
  verbs: ["update"]
# DaskAwsPolicies: a namespace's limits, allowlists and defaults, read from the watch;
# their status shows the namespace's usage. Never written otherwise.
- apiGroups: ["daskaws.io"]
  resources: ["daskawspolicies"]
  verbs: ["list", "watch"]
- apiGroups: ["daskaws.io"]
  resources: ["daskawspolicies/status"]
  verbs: ["patch"]
# kopf.event(): Events on the DaskAwsCluster and the DaskAwsJob (core/v1).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# The connection Secret <name>-dask-connection: written by replace (update), else create;
# deleted with the cluster. Never read: no get, list or watch on Secrets.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "update", "delete"]
{{- end }}
