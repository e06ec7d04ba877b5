<?xml version="1.0" encoding="UTF-8"?>
<!-- Legacy (pre-QCVN) SOAP status, vn-standards.md §1.10: SOAP-ENV:Envelope/SOAP-ENV:Header/
     edXML:Status with a dd/MM/yyyy HH:mm:ss Timestamp -> a QCVN 102 status packet. Elements are
     matched by local name, because legacy producers bind the edXML prefix to varying URIs. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016" exclude-result-prefixes="">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/">
    <xsl:variable name="status" select="/*[local-name()='Envelope']/*[local-name()='Header']/*[local-name()='Status']"/>
    <xsl:if test="count($status) != 1">
      <xsl:message terminate="yes">expected one SOAP-ENV:Header/Status</xsl:message>
    </xsl:if>
    <edXML:edXML>
      <edXML:edXMLEnvelope>
        <edXML:edXMLHeader>
          <edXML:Status>
            <xsl:apply-templates select="$status/*"/>
          </edXML:Status>
        </edXML:edXMLHeader>
      </edXML:edXMLEnvelope>
    </edXML:edXML>
  </xsl:template>

  <!-- dd/MM/yyyy HH:mm:ss -> yyyy/MM/dd HH:mm:ss; anything else is copied as is -->
  <xsl:template match="*[local-name()='Timestamp']">
    <edXML:Timestamp>
      <xsl:variable name="t" select="normalize-space(.)"/>
      <xsl:choose>
        <xsl:when test="substring($t, 3, 1) = '/' and substring($t, 6, 1) = '/'">
          <xsl:value-of select="concat(substring($t, 7, 4), '/', substring($t, 4, 2), '/', substring($t, 1, 2), substring($t, 11))"/>
        </xsl:when>
        <xsl:otherwise><xsl:value-of select="$t"/></xsl:otherwise>
      </xsl:choose>
    </edXML:Timestamp>
  </xsl:template>

  <xsl:template match="*">
    <xsl:element name="edXML:{local-name()}" namespace="http://www.mic.gov.vn/TBT/QCVN_102_2016">
      <xsl:apply-templates select="*|text()"/>
    </xsl:element>
  </xsl:template>

  <xsl:template match="text()"><xsl:value-of select="."/></xsl:template>
</xsl:stylesheet>
