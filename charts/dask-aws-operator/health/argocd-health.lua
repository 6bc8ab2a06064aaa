-- Argo CD health for daskaws.io/DaskAwsCluster: the value of
-- resource.customizations.health.daskaws.io_DaskAwsCluster in argocd-cm.
-- Same verdicts as kstatus (Flux, cli-utils): Stalled -> Degraded,
-- Reconciling -> Progressing, Ready -> Healthy, and Progressing while the
-- operator has not yet reported on the current spec (no status, or
-- status.observedGeneration behind metadata.generation) or is deleting it.
-- Argo CD runs health scripts without the string library, so none is used.
local hs = { status = "Progressing", message = "Waiting for the dask-aws operator" }

if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Deleting: the operator removes the AWS resources first"
  return hs
end

local status = obj.status
if status == nil or status.observedGeneration == nil
    or status.observedGeneration ~= obj.metadata.generation then
  return hs
end

local conditions = {}
for _, c in ipairs(status.conditions or {}) do
  conditions[c.type] = c
end

local function says(t)
  local c = conditions[t]
  if c ~= nil and c.status == "True" then
    return c
  end
  return nil
end

local c = says("Stalled")
if c ~= nil then
  hs.status = "Degraded"
  hs.message = (c.reason or "Stalled") .. ": " .. (c.message or "")
  return hs
end
c = says("Reconciling")
if c ~= nil then
  hs.message = (c.reason or "Reconciling") .. ": " .. (c.message or "")
  return hs
end
c = says("Ready")
if c ~= nil then
  hs.status = "Healthy"
  hs.message = c.message or ""
  return hs
end
c = conditions["Ready"]
if c ~= nil then
  hs.message = (c.reason or "NotReady") .. ": " .. (c.message or "")
end
return hs
