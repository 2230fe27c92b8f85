{{/*
Names, labels, images and the pieces of pod specs every workload shares.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "airparadis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name prefix of every object; truncated so that "-<component>" suffixes stay within 63 characters. */}}
{{- define "airparadis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label value. */}}
{{- define "airparadis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels. Call with (dict "root" $ "component" "mlflow"); component may be empty. */}}
{{- define "airparadis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airparadis.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Common labels. Call with (dict "root" $ "component" "mlflow"). */}}
{{- define "airparadis.labels" -}}
helm.sh/chart: {{ include "airparadis.chart" .root }}
{{ include "airparadis.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: airparadis
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of batch pods: the NetworkPolicy for jobs selects airparadis.io/workload=job. */}}
{{- define "airparadis.jobPodLabels" -}}
{{ include "airparadis.labels" . }}
airparadis.io/workload: job
{{- end }}

{{/* Object names of the components. */}}
{{- define "airparadis.mlflowName" -}}{{ include "airparadis.fullname" . }}-mlflow{{- end }}
{{- define "airparadis.postgresqlName" -}}{{ include "airparadis.fullname" . }}-postgresql{{- end }}
{{- define "airparadis.dashboardName" -}}{{ include "airparadis.fullname" . }}-dashboard{{- end }}
{{- define "airparadis.launcherName" -}}{{ include "airparadis.fullname" . }}-launcher{{- end }}
{{/* The InferenceService is named after the release; KServe names its pods' Service <name>-predictor. */}}
{{- define "airparadis.isvcName" -}}{{ include "airparadis.fullname" . }}{{- end }}

{{/* ServiceAccount of the workloads. */}}
{{- define "airparadis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "airparadis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ServiceAccount of MLflow (carries the Workload Identity client id). */}}
{{- define "airparadis.mlflowServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "airparadis.mlflowName" . }}
{{- else }}
{{- include "airparadis.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/* In-cluster URL of the tracking server. */}}
{{- define "airparadis.mlflowUrl" -}}
http://{{ include "airparadis.mlflowName" . }}:{{ .Values.mlflow.port }}
{{- end }}

{{/* URL of the predictor as the dashboard calls it. */}}
{{- define "airparadis.predictorUrl" -}}
{{- if .Values.dashboard.serverUrl }}
{{- .Values.dashboard.serverUrl }}
{{- else }}
{{- printf "http://%s-predictor.%s.svc.cluster.local" (include "airparadis.isvcName" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Model URI served by the predictor. */}}
{{- define "airparadis.modelUri" -}}
{{- default (printf "models:/%s@%s" .Values.platform.modelName .Values.platform.championAlias) .Values.modelServer.modelUri }}
{{- end }}

{{/*
True ("true") when the predictor is enabled. An explicit value, never API discovery: an offline
render must not drop the InferenceService, nor a discovery hiccup during an upgrade delete it.
*/}}
{{- define "airparadis.kserveEnabled" -}}
{{- if .Values.modelServer.enabled }}true{{ end }}
{{- end }}

{{/*
KServe deployment mode under its current name (KServe >= 0.16): "Knative" or "Standard".
The legacy names are mapped: KServe's webhook compares the annotation with the normalised mode
in the status, so "Serverless" would make every upgrade fail with "cannot be changed".
*/}}
{{- define "airparadis.deploymentMode" -}}
{{- $mode := .Values.modelServer.deploymentMode }}
{{- get (dict "Serverless" "Knative" "RawDeployment" "Standard") $mode | default $mode }}
{{- end }}

{{/* True ("true") in Knative mode. */}}
{{- define "airparadis.knative" -}}
{{- if eq (include "airparadis.deploymentMode" .) "Knative" }}true{{ end }}
{{- end }}

{{/*
Port where Prometheus finds the predictor's metrics, as KServe's pod mutator arranges it: the
queue-proxy's aggregation port (9088, named aggr-metric) in Knative mode, the server itself
(8080, named http) in Standard mode, where there is no queue-proxy.
*/}}
{{- define "airparadis.metricsPort" -}}
{{- if include "airparadis.knative" . }}9088{{ else }}8080{{ end }}
{{- end }}
{{- define "airparadis.metricsPortName" -}}
{{- if include "airparadis.knative" . }}aggr-metric{{ else }}http{{ end }}
{{- end }}

{{/* Project image reference. Call with (dict "root" $ "image" .Values.modelServer.image). */}}
{{- define "airparadis.projectImage" -}}
{{- $registry := .root.Values.image.registry }}
{{- $repo := .image.repository }}
{{- if $registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" $registry) $repo }}{{ end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repo .image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Upstream image reference (MLflow, PostgreSQL). Call with the image block. */}}
{{- define "airparadis.upstreamImage" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{/* imagePullSecrets block. */}}
{{- define "airparadis.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name and key of the PostgreSQL password Secret. */}}
{{- define "airparadis.postgresqlSecretName" -}}
{{- default (include "airparadis.postgresqlName" .) .Values.postgresql.auth.existingSecret }}
{{- end }}

{{/* Secret of the feedback user's password (in-chart PostgreSQL). */}}
{{- define "airparadis.feedbackDbSecretName" -}}
{{- default (printf "%s-feedback-db" (include "airparadis.fullname" .)) .Values.feedbackDb.passwordSecret }}
{{- end }}

{{/* Secret of the dashboard's API key. */}}
{{- define "airparadis.dashboardApiKeySecretName" -}}
{{- default (printf "%s-dashboard-api-key" (include "airparadis.fullname" .)) .Values.dashboard.apiKey.existingSecret }}
{{- end }}

{{/*
A Secret the chart generates when values name none. Call with
(dict "root" $ "name" "..." "key" "..." "component" "..."). The value is random on first
install and read back from the cluster afterwards (`lookup`), so upgrades keep it; Helm keeps
the Secret on uninstall, since the database volume it unlocks outlives the release too.
*/}}
{{- define "airparadis.generatedSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- $release := dig "metadata" "annotations" "meta.helm.sh/release-name" "" ($existing | default dict) }}
{{- /* A Secret of that name created by hand (as older versions of this chart asked) is used as
it is: rendering it would make Helm refuse to take over an object it does not own. */}}
{{- if or (not $existing) (eq $release .root.Release.Name) }}
{{- $value := "" }}
{{- if and $existing $existing.data (hasKey $existing.data .key) }}
{{- $value = index $existing.data .key }}
{{- else }}
{{- $value = randAlphaNum 40 | b64enc }}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "airparadis.labels" (dict "root" .root "component" .component) | nindent 4 }}
    airparadis.io/generated: "true"
  annotations:
    helm.sh/resource-policy: keep
type: Opaque
data:
  {{ .key }}: {{ $value }}
{{- end }}
{{- end }}

{{/*
Environment giving AIRPARADIS_SERVER_FEEDBACK_DB_URL, the feedback store the predictor writes and
the retraining Jobs read: the same database for all of them. From feedbackDb.existingSecret, else
the in-chart PostgreSQL with the feedback user of its own (its password from its Secret).
*/}}
{{- define "airparadis.feedbackDbEnv" -}}
{{- $f := .Values.feedbackDb }}
{{- if $f.existingSecret }}
- name: AIRPARADIS_SERVER_FEEDBACK_DB_URL
  valueFrom:
    secretKeyRef:
      name: {{ $f.existingSecret }}
      key: {{ $f.existingSecretKey }}
{{- else if .Values.postgresql.enabled }}
- name: FEEDBACK_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airparadis.feedbackDbSecretName" . }}
      key: {{ $f.passwordKey }}
- name: AIRPARADIS_SERVER_FEEDBACK_DB_URL
  value: {{ printf "postgresql+psycopg://%s:$(FEEDBACK_DB_PASSWORD)@%s:5432/%s" $f.username (include "airparadis.postgresqlName" .) $f.database | quote }}
{{- else }}
{{- fail "postgresql.enabled=false needs feedbackDb.existingSecret (a Secret holding the feedback database URL)" }}
{{- end }}
{{- end }}

{{/* Environment shared by every project container (predictor, dashboard, jobs). */}}
{{- define "airparadis.platformEnv" -}}
- name: MLFLOW_TRACKING_URI
  value: {{ include "airparadis.mlflowUrl" . | quote }}
- name: AIRPARADIS_MODEL_NAME
  value: {{ .Values.platform.modelName | quote }}
- name: AIRPARADIS_EXPERIMENT
  value: {{ .Values.platform.experiment | quote }}
- name: AIRPARADIS_CHAMPION_ALIAS
  value: {{ .Values.platform.championAlias | quote }}
- name: AIRPARADIS_LOG_FORMAT
  value: {{ .Values.platform.logFormat | default "text" | quote }}
- name: AIRPARADIS_HOME
  value: /var/lib/airparadis
- name: HOME
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
{{- end }}

{{/*
Environment giving the Optuna storage URL as OPTUNA_STORAGE: from tuning.storage's Secret,
else built from the in-chart PostgreSQL (the password comes from its Secret, never from values).
*/}}
{{- define "airparadis.optunaEnv" -}}
{{- if .Values.tuning.storage.existingSecret }}
- name: OPTUNA_STORAGE
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tuning.storage.existingSecret }}
      key: {{ .Values.tuning.storage.existingSecretKey }}
{{- else if .Values.postgresql.enabled }}
- name: OPTUNA_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airparadis.postgresqlSecretName" . }}
      key: {{ .Values.postgresql.auth.passwordKey }}
- name: OPTUNA_STORAGE
  value: {{ printf "postgresql+psycopg://%s:$(OPTUNA_DB_PASSWORD)@%s:5432/%s" .Values.postgresql.auth.username (include "airparadis.postgresqlName" .) .Values.postgresql.auth.optunaDatabase | quote }}
{{- else }}
{{- fail "tuning.enabled needs tuning.storage.existingSecret when postgresql.enabled is false" }}
{{- end }}
{{- end }}

{{/* Container security context. Call with the security context value (a map). */}}
{{- define "airparadis.securityContext" -}}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}

{{/* Writable emptyDir volumes of a project pod (the root filesystem is read-only). */}}
{{- define "airparadis.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: home
  emptyDir:
    sizeLimit: 2Gi
{{- end }}

{{- define "airparadis.scratchVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /var/lib/airparadis
{{- end }}

{{/*
Pod template of a batch workload. Call with a dict:
  root: $, component: label, args: list of CLI arguments, restartPolicy (default Never),
  initArgs (optional): a list of CLI arguments run as a retried init step,
  extraEnv (optional): extra env YAML string, volumes/volumeMounts (optional YAML strings).
*/}}
{{- define "airparadis.jobPodTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "airparadis.jobPodLabels" (dict "root" $root "component" .component) | nindent 4 }}
spec:
  serviceAccountName: {{ include "airparadis.serviceAccountName" $root }}
  automountServiceAccountToken: false
  restartPolicy: {{ .restartPolicy | default "Never" }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with include "airparadis.imagePullSecrets" $root }}{{ . | nindent 2 }}{{ end }}
  {{- if .initArgs }}
  initContainers:
    - name: {{ .initName }}
      image: {{ include "airparadis.projectImage" (dict "root" $root "image" $v.jobs.image) }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["airparadis"]
      args:
        {{- toYaml .initArgs | nindent 8 }}
      env:
        {{- include "airparadis.platformEnv" $root | nindent 8 }}
        {{- with .extraEnv }}
        {{- . | nindent 8 }}
        {{- end }}
      resources:
        requests:
          cpu: 100m
          memory: 256Mi
        limits:
          cpu: 500m
          memory: 512Mi
      {{- include "airparadis.securityContext" $v.containerSecurityContext | nindent 6 }}
      volumeMounts:
        {{- include "airparadis.scratchVolumeMounts" $root | nindent 8 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "airparadis.projectImage" (dict "root" $root "image" $v.jobs.image) }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["airparadis"]
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        {{- include "airparadis.platformEnv" $root | nindent 8 }}
        {{- with .extraEnv }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- if $v.jobs.data.existingClaim }}
        - name: AIRPARADIS_TRAIN_DATA
          value: {{ $v.jobs.data.mountPath | quote }}
        {{- end }}
        {{- with $v.jobs.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        {{- toYaml $v.jobs.resources | nindent 8 }}
      {{- include "airparadis.securityContext" $v.containerSecurityContext | nindent 6 }}
      volumeMounts:
        {{- include "airparadis.scratchVolumeMounts" $root | nindent 8 }}
        {{- if $v.jobs.data.existingClaim }}
        - name: data
          mountPath: {{ $v.jobs.data.mountPath }}
          readOnly: true
        {{- end }}
        {{- with .volumeMounts }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "airparadis.scratchVolumes" $root | nindent 4 }}
    {{- if $v.jobs.data.existingClaim }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ $v.jobs.data.existingClaim }}
        readOnly: true
    {{- end }}
    {{- with .volumes }}
    {{- . | nindent 4 }}
    {{- end }}
  {{- with $v.jobs.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.jobs.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.jobs.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Fields every Job spec shares. */}}
{{- define "airparadis.jobSpecCommon" -}}
backoffLimit: {{ .Values.jobs.backoffLimit }}
ttlSecondsAfterFinished: {{ .Values.jobs.ttlSecondsAfterFinished }}
activeDeadlineSeconds: {{ .Values.jobs.activeDeadlineSeconds }}
{{- end }}

{{/* Name of a one-shot Job: a new Job per Helm revision, since a Job's pod template cannot change. */}}
{{- define "airparadis.jobName" -}}
{{- printf "%s-%s-r%d" (include "airparadis.fullname" .root) .name (int .root.Release.Revision) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
psql script creating the feedback database and its user (idempotent). Names and password come
from the environment (\getenv: FEEDBACK_DB_USER, FEEDBACK_DB_PASSWORD, FEEDBACK_DB_NAME,
MLFLOW_DB_NAME, OPTUNA_DB_NAME), never from arguments.
*/}}
{{- define "airparadis.feedbackDbSql" -}}
\set ON_ERROR_STOP on
\getenv feedback_user FEEDBACK_DB_USER
\getenv feedback_password FEEDBACK_DB_PASSWORD
\getenv feedback_db FEEDBACK_DB_NAME
\getenv mlflow_db MLFLOW_DB_NAME
\getenv optuna_db OPTUNA_DB_NAME
SELECT format('CREATE ROLE %I', :'feedback_user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'feedback_user') \gexec
ALTER ROLE :"feedback_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'feedback_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'feedback_db', :'feedback_user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'feedback_db') \gexec
ALTER DATABASE :"feedback_db" OWNER TO :"feedback_user";
REVOKE ALL ON DATABASE :"feedback_db" FROM PUBLIC;
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname)
  FROM pg_database WHERE datname IN (:'mlflow_db', :'optuna_db') \gexec
{{- end }}

{{/* Environment of the feedback script, but the administrator's connection. */}}
{{- define "airparadis.feedbackDbSqlEnv" -}}
- name: FEEDBACK_DB_USER
  value: {{ .Values.feedbackDb.username | quote }}
- name: FEEDBACK_DB_NAME
  value: {{ .Values.feedbackDb.database | quote }}
- name: FEEDBACK_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airparadis.feedbackDbSecretName" . }}
      key: {{ .Values.feedbackDb.passwordKey }}
- name: MLFLOW_DB_NAME
  value: {{ .Values.postgresql.auth.database | quote }}
- name: OPTUNA_DB_NAME
  value: {{ .Values.postgresql.auth.optunaDatabase | quote }}
{{- end }}
